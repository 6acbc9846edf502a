//! The breaker's state machine, instant by instant: every time is given, so
//! each transition is exact.

use functions::payments::{Breaker, BreakerSettings, Health, State, Ticket};
use std::time::{Duration, Instant};

const OPEN_FOR: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

fn breaker() -> Breaker {
    Breaker::new(BreakerSettings { failures: 3, open_for: OPEN_FOR, call_timeout: CALL_TIMEOUT })
}

/// Lets a call through at `now` and records its answer.
#[track_caller]
fn call(breaker: &mut Breaker, now: Instant, health: Health) -> Ticket {
    let ticket = breaker.admit(now).unwrap_or_else(|wait| panic!("the call was refused for another {wait:?}"));
    breaker.record(ticket, health, now);
    ticket
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn it_opens_on_the_nth_failure_in_a_row_and_not_before() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    call(&mut breaker, t0, Health::Failed);
    call(&mut breaker, t0, Health::Failed);
    assert_eq!(breaker.state(), State::Closed { failures: 2 });
    call(&mut breaker, t0 + seconds(1), Health::Failed);
    assert_eq!(breaker.state(), State::Open { until: t0 + seconds(1) + OPEN_FOR });
}

#[test]
fn an_answer_between_failures_starts_the_count_again() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for health in [Health::Failed, Health::Failed, Health::Answered, Health::Failed, Health::Failed] {
        call(&mut breaker, t0, health);
    }
    assert_eq!(breaker.state(), State::Closed { failures: 2 }, "failures that are not in a row never open it");
}

#[test]
fn while_open_every_call_is_refused_with_the_time_left() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    assert_eq!(breaker.admit(t0), Err(OPEN_FOR));
    assert_eq!(breaker.admit(t0 + seconds(4)), Err(seconds(6)));
    assert_eq!(breaker.admit(t0 + OPEN_FOR - Duration::from_millis(1)), Err(Duration::from_millis(1)));
    assert!(matches!(breaker.state(), State::Open { .. }), "refusals change nothing");
}

#[test]
fn after_the_open_time_one_probe_goes_out_and_the_others_wait_for_it() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    let probe_at = t0 + OPEN_FOR;
    assert_eq!(breaker.admit(probe_at), Ok(Ticket::Probe));
    assert_eq!(breaker.state(), State::HalfOpen { probe_since: probe_at });
    assert_eq!(breaker.admit(probe_at + Duration::from_millis(300)), Err(Duration::from_millis(700)), "one probe at a time");
}

#[test]
fn a_probe_that_is_answered_closes_it() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    assert_eq!(call(&mut breaker, t0 + OPEN_FOR, Health::Answered), Ticket::Probe);
    assert_eq!(breaker.state(), State::Closed { failures: 0 });
    assert_eq!(breaker.admit(t0 + OPEN_FOR), Ok(Ticket::Normal));
}

#[test]
fn a_probe_that_fails_opens_it_for_another_open_time() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    let probe_at = t0 + OPEN_FOR + seconds(2);
    call(&mut breaker, probe_at, Health::Failed);
    assert_eq!(breaker.state(), State::Open { until: probe_at + OPEN_FOR });
}

#[test]
fn a_probe_never_answered_is_given_up_after_the_call_timeout() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    assert_eq!(breaker.admit(t0 + OPEN_FOR), Ok(Ticket::Probe));
    // Its caller went away: no answer is ever recorded.
    assert_eq!(breaker.admit(t0 + OPEN_FOR + CALL_TIMEOUT), Ok(Ticket::Probe), "another probe goes out");
}

#[test]
fn late_answers_from_before_a_change_change_nothing() {
    let t0 = Instant::now();
    let mut breaker = breaker();
    let early = breaker.admit(t0).unwrap();
    for _ in 0..3 {
        call(&mut breaker, t0, Health::Failed);
    }
    let open = breaker.state();
    breaker.record(early, Health::Answered, t0 + seconds(1));
    assert_eq!(breaker.state(), open, "a call from before it opened does not close it");
    breaker.record(early, Health::Failed, t0 + seconds(2));
    assert_eq!(breaker.state(), open, "nor keep it open longer");
}
