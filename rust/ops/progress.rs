//! The progress bar for long batch work ([`super::jsonl`]): one indicatif bar
//! on standard error, relabelled as the work moves from stage to stage. It
//! draws only when standard error is a terminal (indicatif hides it otherwise),
//! so a script's output stays clean.

use indicatif::{ProgressBar, ProgressStyle};

use super::jsonl::Stage;

/// A progress reporter for [`super::export_jsonl`] / [`super::import_jsonl`].
/// Call [`Bar::finish`] when the work is over.
pub struct Bar {
    bar: ProgressBar,
    stage: Option<Stage>,
}

impl Bar {
    /// A bar with nothing shown yet.
    pub fn new() -> Self {
        Bar {
            bar: ProgressBar::new(0),
            stage: None,
        }
    }

    /// Report `done` of `total` in `stage` (the callback the operations take).
    pub fn update(&mut self, stage: Stage, done: u64, total: u64) {
        if self.stage != Some(stage) {
            self.stage = Some(stage);
            let (label, unit) = match stage {
                Stage::Exporting => ("exporting", "{human_pos}/{human_len} records"),
                Stage::Checking => ("checking", "{binary_bytes}/{binary_total_bytes}"),
                Stage::Importing => ("importing", "{human_pos}/{human_len} records"),
            };
            let template = format!("{{msg}} {{wide_bar}} {unit} ({{eta}})");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                self.bar.set_style(style);
            }
            self.bar.set_message(label);
            self.bar.reset();
        }
        self.bar.set_length(total.max(done));
        self.bar.set_position(done);
    }

    /// Leave the bar as it ended.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}
