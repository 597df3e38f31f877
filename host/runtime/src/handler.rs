//! Part of the app contract: which method handles an event kind.

/// The method that handles app events of `kind` on the nodes that receive
/// them: `on_` and the kind in snake case (`TaskAdded` -> `on_task_added`).
/// An app declares a handler by having a mutating method of that name.
pub fn handler_name(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 8);
    out.push_str("on_");
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::handler_name;

    #[test]
    fn kinds_become_snake_case_handlers() {
        assert_eq!(handler_name("TaskAdded"), "on_task_added");
        assert_eq!(handler_name("Inserted"), "on_inserted");
        assert_eq!(handler_name("already_snake"), "on_already_snake");
    }
}
