//! The dashboard's markup, written with `maud::html!`: every value placed in a page is
//! escaped by the macro, so no page builds HTML by hand. Views only turn data into markup;
//! the handlers one level up gather the data and decide what to show.

pub(super) mod chart;
pub(super) mod claim;
pub(super) mod deletion;
pub(super) mod deployment;
pub(super) mod deployments;
pub(super) mod join;
pub(super) mod layout;
pub(super) mod operator;
pub(super) mod overview;
pub(super) mod parts;
pub(super) mod prompt;
pub(super) mod refusal;
pub(super) mod resource;
pub(super) mod resources;
pub(super) mod scripts;
pub(super) mod settings;
pub(super) mod sign_in;
pub(super) mod stack;
pub(super) mod style;
pub(super) mod team;
pub(super) mod vault;

#[cfg(test)]
mod hostile;
