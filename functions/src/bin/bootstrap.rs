//! The one Lambda entry point. Every function of template.yaml ships this
//! binary and names its handler in `FUNCTION`: one build and one link for all
//! of them instead of 24 (see BENCHMARKS.md for the measured trade-off). Each
//! is still its own Lambda, with its own role, alias, alarms and scaling.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run_from_env().await
}
