use mero_sdk::app;
use mero_sdk::collections::Counter;

#[app::state]
pub struct State {
    hits: Counter,
}

#[app::logic]
impl State {
    #[app::view]
    pub fn looks_like_a_view(&mut self) {}

    pub fn takes_mut_ref(&mut self, out: &mut String) {}

    pub async fn is_async(&self) {}

    pub fn generic<T>(&self, t: T) {}

    pub fn __reserved(&self) {}

    pub fn destructures(&self, (a, b): (u8, u8)) {}

    #[app::init]
    fn private_init() -> State {
        State { hits: Counter::new() }
    }
}

fn main() {}
