use mero_sdk::app;

#[app::event]
pub struct Event {
    key: String,
}

fn main() {}
