use mero_sdk::app;
use mero_sdk::collections::LwwRegister;

#[app::state(version = 1)]
pub struct Old {
    name: LwwRegister<String>,
}

#[app::state(version = 3)]
pub struct State {
    name: LwwRegister<String>,
}

#[app::logic]
impl State {
    #[app::init]
    pub fn init() -> State {
        State {
            name: LwwRegister::new(String::new()),
        }
    }

    // Reads a state declared as version 1 but claims to migrate from 2.
    #[app::migrate(from = 2)]
    pub fn from_v2(&mut self, _old: &Old) {}
}

fn main() {}
