//! The dashboard's markup, written with `maud::html!`: every value placed in a page is
//! escaped by the macro, so no page builds HTML by hand. Views only turn data into markup;
//! the handlers one level up gather the data and decide what to show.

pub(super) mod claim;
pub(super) mod deletion;
pub(super) mod deployment;
pub(super) mod layout;
pub(super) mod operator;
pub(super) mod overview;
pub(super) mod parts;
pub(super) mod refusal;
pub(super) mod resource;
pub(super) mod scripts;
pub(super) mod sign_in;

#[cfg(test)]
mod hostile;
