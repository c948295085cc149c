//! Error texts that speak of a setting name it by its field (`batch_size`, `hidden_size`); a
//! front end that calls the setting something else (the CLI's `--batch`, `--hidden`) renders
//! the same text with its own names through [`NamesSettings::describe_with`].

/// An error whose message names settings.
pub trait NamesSettings {
    /// The message, with each setting `field` written as `name(field)`.
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String;
}

/// The engine's own names: the fields themselves.
pub fn field_name(field: &'static str) -> String {
    field.to_owned()
}
