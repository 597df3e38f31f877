use mero_sdk::app;
use mero_sdk::collections::Counter;

#[app::state]
pub struct State {
    hits: Counter,
}

#[app::logic]
impl State {
    #[app::init]
    pub fn init() -> State {
        State { hits: Counter::new() }
    }

    #[app::init]
    pub fn init_again() -> State {
        State { hits: Counter::new() }
    }
}

fn main() {}
