//! A Lambda entry point: the handler named like this binary (see `functions::registry`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run(env!("CARGO_BIN_NAME")).await
}
