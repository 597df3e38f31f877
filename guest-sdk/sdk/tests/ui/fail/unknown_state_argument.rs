use mero_sdk::app;
use mero_sdk::collections::Counter;

#[app::state(versoin = 2)]
pub struct State {
    hits: Counter,
}

fn main() {}
