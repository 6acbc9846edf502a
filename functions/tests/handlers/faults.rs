//! Fault injection: the real handlers, driven through the registry, with the
//! ports failing the way AWS fails (lost races, throttling, PutEvents partial
//! failures, a consumer failing mid-batch, duplicate and reordered
//! deliveries). Every test asserts that nothing is lost and nothing is
//! duplicated in what users see, and prints its figures on lines starting
//! with `faults:` (`cargo test -p functions --test handlers faults -- --nocapture`).

mod concurrency;
mod injectors;
mod mid_batch;
mod publishing;
mod redelivery;
mod throttling;

/// A figure for RELIABILITY.md, printed so `--nocapture` shows it.
fn figure(test: &str, text: String) {
    println!("faults: {test}: {text}");
}
