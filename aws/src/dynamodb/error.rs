//! Reading the SDK's errors: the service's code and message when DynamoDB
//! answered, the whole cause chain when it did not (timeout, connection).

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `code: message` of a service error, or the full chain of any other failure.
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!("{}: {}", service.code().unwrap_or("unknown error"), service.message().unwrap_or("no message")),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// The service's error code, if DynamoDB answered at all.
pub fn code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}
