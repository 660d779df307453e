//! The spinner `instanode deploy` shows while it packs, uploads, builds and waits. It is drawn
//! only when stderr is a terminal: piped or redirected (scripts, CI, tests), stderr carries
//! the plain progress lines alone, byte for byte.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner on stderr, or nothing.
#[derive(Default)]
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// A spinning spinner if stderr is a terminal, else nothing.
    pub fn on_terminal() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("the spinner's template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    fn live(&self) -> Option<&ProgressBar> {
        self.0.as_ref().filter(|bar| !bar.is_finished())
    }

    /// Names what is under way, next to the spinner.
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = self.live() {
            bar.set_message(message.to_string());
        }
    }

    /// Runs `print` (which writes to the terminal) with the spinner out of its way.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match self.live() {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Removes the spinner for good, before a result is printed.
    pub fn clear(&self) {
        if let Some(bar) = self.live() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}
