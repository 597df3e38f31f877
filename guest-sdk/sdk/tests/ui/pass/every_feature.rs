use mero_sdk::app;
use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap, UnorderedSet, Vector};

#[app::state(version = 2, package = "com.example.every-feature")]
pub struct StateV2 {
    items: UnorderedMap<String, LwwRegister<String>>,
    legacy: LwwRegister<u64>,
}

#[app::state(version = 3)]
pub struct State {
    items: UnorderedMap<String, LwwRegister<String>>,
    nested: UnorderedMap<u64, UnorderedMap<String, Vector<String>>>,
    tags: UnorderedSet<String>,
    hits: Counter,
    owner: LwwRegister<Option<String>>,
}

#[app::event]
pub enum Event<'a> {
    Set { key: &'a str },
    Pair(u32, u32),
    One(String),
    Cleared,
}

#[app::logic]
impl State {
    #[app::init]
    pub fn init(owner: Option<String>) -> State {
        State {
            items: UnorderedMap::new(),
            nested: UnorderedMap::new(),
            tags: UnorderedSet::new(),
            hits: Counter::new(),
            owner: LwwRegister::new(owner),
        }
    }

    pub fn set(&mut self, key: &str, value: String) -> app::Result<()> {
        self.items.insert_value(key.to_string(), value)?;
        app::emit!(Event::Set { key });
        Ok(())
    }

    #[app::view]
    pub fn get(&self, key: &str) -> app::Result<Option<String>> {
        self.items.get_value(key)
    }

    pub fn plain(&self) -> u64 {
        7
    }

    pub fn custom(&self, bytes: &[u8]) -> Result<usize, String> {
        Ok(bytes.len())
    }

    #[app::migrate(from = 2)]
    pub fn from_v2(&mut self, old: &StateV2) -> app::Result<()> {
        let legacy = old.legacy.get()?.unwrap_or_default();
        self.hits.increment(legacy).map(drop)?;
        mero_sdk::migration::drop_field::<LwwRegister<u64>>("legacy")
    }

    #[app::migration_check(from = 2)]
    pub fn check_v2(&self, old: &StateV2) -> app::Result<()> {
        mero_sdk::migration::count_parity(&old.items, &self.items)
    }

    #[app::migrate(from = 1)]
    pub fn from_v1(&mut self) {}

    #[app::migration_check(from = 1)]
    pub fn check_v1(&self) -> bool {
        true
    }

    fn private_helper(&self) {}
}

fn main() {}
