use mero_sdk::app;

#[app::state]
pub enum State {
    A,
}

fn main() {}
