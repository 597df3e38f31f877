use mero_sdk::app;
use mero_sdk::collections::Counter;

#[app::state]
pub struct State {
    fine: Counter,
    count: u64,
}

fn main() {}
