use mero_sdk::app;

pub struct State;

impl State {
    #[app::init]
    pub fn init() -> State {
        State
    }
}

fn main() {}
