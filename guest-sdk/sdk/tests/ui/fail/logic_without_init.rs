use mero_sdk::app;
use mero_sdk::collections::Counter;

#[app::state]
pub struct State {
    hits: Counter,
}

#[app::logic]
impl State {
    pub fn hit(&mut self) -> app::Result<i64> {
        self.hits.increment(1)
    }
}

fn main() {}
