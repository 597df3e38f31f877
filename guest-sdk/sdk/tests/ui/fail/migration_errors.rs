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

    #[app::migrate(from = 2)]
    pub fn from_v2(&mut self, _old: &Old) {}

    // A migration gets the old state, not JSON arguments.
    #[app::migrate(from = 1)]
    pub fn from_v1(&mut self, _old: &Old, _extra: u32) {}

    // A check cannot write.
    #[app::migration_check(from = 2)]
    pub fn check_v2(&mut self) -> bool {
        true
    }

    // There is no migration from 4 to check.
    #[app::migration_check(from = 4)]
    pub fn check_v4(&self) -> bool {
        true
    }

    #[app::migration_check]
    pub fn check_any(&self) -> bool {
        true
    }
}

fn main() {}
