//! From a run's settings to a run: the trainer's options and schedule, the checks a resumed checkpoint must pass against the corpus it goes on with, and
//! the settings once the run is done. The command line finds the files, asks and prints; the
//! decisions are made here, where they are tested without the binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use charrnn_kernels::adam::AdamHyper;

use crate::data::Vocab;
use crate::files::checkpoint::Checkpoint;
use crate::setting_names::{field_name, NamesSettings};
use crate::training::run_settings::RunRecord;
use crate::training::time_budget::{CosineOverBudget, RunClock};
use crate::training::{LrDecay, RunSummary, Schedule, TimeLimit, TrainOptions};

/// Why a run cannot go on as its settings and files say.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The run has used all of its time budget.
    #[error("{}", self.describe_with(&field_name))]
    BudgetSpent {
        /// The budget, seconds.
        budget: f64,
        /// What its sessions used, seconds.
        used: f64,
    },
    /// The run has already done every step it was asked for.
    #[error("{}", self.describe_with(&field_name))]
    NothingLeft {
        /// The step the checkpoint is at.
        step: u64,
        /// The run's length.
        total_steps: u64,
    },
    /// The corpus gives another vocabulary than the checkpoint's.
    #[error("{}", self.describe_with(&field_name))]
    OtherVocabulary {
        /// The corpus.
        corpus: PathBuf,
    },
    /// The corpus's prepared tokens are not those the run was trained on.
    #[error("{}", self.describe_with(&field_name))]
    OtherTokens {
        /// The corpus.
        corpus: PathBuf,
        /// The run's directory.
        run: PathBuf,
    },
    /// The checkpoint's carried state does not have the rows its settings say.
    #[error("{}", self.describe_with(&field_name))]
    CarriedRows {
        /// The run's directory.
        run: PathBuf,
        /// Rows of the carried state.
        rows: usize,
        /// Rows per batch in the settings.
        batch_size: usize,
    },
}

impl NamesSettings for PlanError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        let pass_data = || format!("pass {} FILE with the text of that run", name("data"));
        match self {
            PlanError::BudgetSpent { budget, used } => format!(
                "the run has used {used:.0}s of its {budget:.0}s budget: nothing left to do (pass {} with a longer \
                 budget to go further)",
                name("time_budget_secs")
            ),
            PlanError::NothingLeft { step, total_steps } => format!(
                "the checkpoint is at step {step} of {total_steps}: nothing left to do (pass {} N to go further)",
                name("total_steps")
            ),
            PlanError::OtherVocabulary { corpus } => format!(
                "the checkpoint was trained on another vocabulary than '{}' gives; {}",
                corpus.display(),
                pass_data()
            ),
            PlanError::OtherTokens { corpus, run } => format!(
                "the corpus '{}' is not the one the run in '{}' was trained on (its prepared tokens differ); {}",
                corpus.display(),
                run.display(),
                pass_data()
            ),
            PlanError::CarriedRows { run, rows, batch_size } => format!(
                "the checkpoint in '{}' is damaged: its carried state is for {rows} batch rows, its settings say {batch_size}",
                run.display()
            ),
        }
    }
}

/// The corpus a run is resumed on: its path (for messages), vocabulary and the SHA-256 of its
/// prepared tokens.
pub struct ResumeCorpus<'a> {
    /// The corpus file.
    pub path: &'a Path,
    /// Its vocabulary.
    pub vocab: &'a Vocab,
    /// SHA-256 of its prepared token file.
    pub tokens_sha256: &'a str,
}

impl RunRecord {
    /// The trainer's options.
    pub fn train_options(&self) -> TrainOptions {
        TrainOptions {
            batch_size: self.batch_size,
            seq_len: self.seq_len,
            adam: AdamHyper { lr: self.lr, weight_decay: self.weight_decay, ..AdamHyper::default() },
            clip: self.clip,
            dropout: self.dropout,
            output_dropout: self.output_dropout,
            weight_drop: self.weight_drop,
            state_reset: self.state_reset,
            dropout_seed: self.seed,
            precision: self.precision,
        }
    }

    /// The schedule from `start_step` (the checkpoint's step; 0 for a new run) to the end;
    /// refused when no step (or no time) is left. A time budget's clock counts from `started`
    /// (the start of the process: preparing the run is part of the budget).
    pub fn schedule(&self, start_step: u64, started: Instant) -> Result<Schedule, PlanError> {
        if start_step >= self.total_steps {
            return Err(PlanError::NothingLeft { step: start_step, total_steps: self.total_steps });
        }
        let time = match self.time_budget_secs {
            None => None,
            Some(budget) if self.time_used_secs >= budget => {
                return Err(PlanError::BudgetSpent { budget, used: self.time_used_secs })
            }
            Some(budget) => Some(TimeLimit { total: Duration::from_secs_f64(budget), lr: CosineOverBudget::DEFAULT }),
        };
        Ok(Schedule {
            start_step,
            total_steps: self.total_steps,
            eval_every: self.eval_every,
            checkpoint_every: self.checkpoint_every,
            lr: self.lr,
            lr_decay: (self.lr_decay < 1.0)
                .then_some(LrDecay { factor: self.lr_decay, after_epochs: self.lr_decay_after }),
            time,
            clock: RunClock::new(Duration::from_secs_f64(self.time_used_secs), started),
        })
    }

    /// Refuses to resume the run in `run` from `checkpoint` on `corpus` unless it is the corpus
    /// the run was trained on and the checkpoint agrees with these settings.
    pub fn check_resume_corpus(
        &self,
        checkpoint: &Checkpoint,
        corpus: &ResumeCorpus<'_>,
        run: &Path,
    ) -> Result<(), PlanError> {
        if &checkpoint.vocab != corpus.vocab {
            return Err(PlanError::OtherVocabulary { corpus: corpus.path.to_owned() });
        }
        if self.tokens_sha256.as_ref().is_some_and(|sha| sha != corpus.tokens_sha256) {
            return Err(PlanError::OtherTokens { corpus: corpus.path.to_owned(), run: run.to_owned() });
        }
        if checkpoint.meta.batch_size != self.batch_size {
            return Err(PlanError::CarriedRows {
                run: run.to_owned(),
                rows: checkpoint.meta.batch_size,
                batch_size: self.batch_size,
            });
        }
        Ok(())
    }

    /// Records what the run did: its last step, last validation loss and throughput.
    pub fn record_outcome(&mut self, summary: &RunSummary) {
        self.steps = summary.last_step;
        self.val_loss = summary.last_eval.map(|e| e.loss);
        self.val_loss_step = summary.last_eval.map(|e| e.step);
        self.tokens_per_sec = Some(summary.tokens_per_sec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::checkpoint::CheckpointMeta;
    use crate::model::config::{CellKind, ModelConfig};
    use crate::model::params::Model;
    use crate::model::workspace::State;
    use crate::training::{EvalReport, Layout, Origin, Trainer};
    use std::time::Duration;

    const MODEL: ModelConfig =
        ModelConfig { cell: CellKind::Gru, vocab_size: 3, embed_size: 4, hidden_size: 5, num_layers: 1 };

    fn record() -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "data": "/c.txt", "tokens_sha256": "abc", "bytes": false, "val_frac": 0.05, "batch_size": 8,
            "seq_len": 16, "lr": 0.002, "lr_decay": 0.5, "lr_decay_after": 10, "clip": 5.0, "dropout": 0.25,
            "seed": 42, "total_steps": 40, "eval_every": 7, "checkpoint_every": 500, "best_val_loss": null
        }))
        .unwrap()
    }

    fn vocab(chars: &str) -> Vocab {
        Vocab::from_symbols_chars(chars.chars().collect()).unwrap()
    }

    fn checkpoint(batch_size: usize) -> Checkpoint {
        let model = Model::<f32>::new(MODEL, 1);
        let n = model.params.len();
        Checkpoint {
            model,
            vocab: vocab("abc"),
            adam_m: vec![0.0; n],
            adam_v: vec![0.0; n],
            adam_step: 3,
            state: State::zeros(&MODEL, batch_size),
            meta: CheckpointMeta {
                format: String::new(),
                version: 1,
                model: MODEL,
                vocab: serde_json::Value::Null,
                run: serde_json::Value::Null,
                step: 3,
                batch_size,
            },
        }
    }

    #[test]
    fn options_and_schedule_come_from_the_record() {
        let rec = record();
        let options = rec.train_options();
        assert_eq!((options.batch_size, options.seq_len, options.adam.lr), (8, 16, 0.002));
        assert_eq!(options.adam.weight_decay, 0.0);
        let decaying = RunRecord { weight_decay: 0.1, ..record() }.train_options();
        assert_eq!((decaying.adam.lr, decaying.adam.weight_decay), (0.002, 0.1));
        assert_eq!((options.clip, options.dropout, options.dropout_seed), (5.0, 0.25, 42));
        let schedule = rec.schedule(12, Instant::now()).unwrap();
        assert_eq!((schedule.start_step, schedule.total_steps, schedule.eval_every), (12, 40, 7));
        assert_eq!(schedule.lr_decay, Some(LrDecay { factor: 0.5, after_epochs: 10 }));
        let constant = RunRecord { lr_decay: 1.0, ..record() };
        assert_eq!(constant.schedule(0, Instant::now()).unwrap().lr_decay, None);
    }

    #[test]
    fn a_finished_run_has_nothing_left_to_do() {
        let rec = record();
        assert!(rec.schedule(39, Instant::now()).is_ok());
        for step in [40, 41] {
            let e = rec.schedule(step, Instant::now()).unwrap_err();
            assert!(matches!(e, PlanError::NothingLeft { total_steps: 40, .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "the checkpoint is at step {step} of 40: nothing left to do (pass total_steps N to go further)"
                )
            );
        }
    }

    #[test]
    fn a_resume_needs_the_run_s_corpus_and_a_checkpoint_that_fits_the_settings() {
        let rec = record();
        let (path, run) = (Path::new("/c.txt"), Path::new("/run"));
        let (abc, abd) = (vocab("abc"), vocab("abd"));
        let corpus = |vocab, tokens_sha256| ResumeCorpus { path, vocab, tokens_sha256 };
        assert!(rec.check_resume_corpus(&checkpoint(8), &corpus(&abc, "abc"), run).is_ok());
        let e = rec.check_resume_corpus(&checkpoint(8), &corpus(&abd, "abc"), run).unwrap_err();
        assert!(matches!(e, PlanError::OtherVocabulary { .. }), "{e:?}");
        let e = rec.check_resume_corpus(&checkpoint(8), &corpus(&abc, "abd"), run).unwrap_err();
        assert!(matches!(e, PlanError::OtherTokens { .. }), "{e:?}");
        assert!(e.describe_with(&|f| format!("--{f}")).contains("pass --data FILE"), "{e}");
        let e = rec.check_resume_corpus(&checkpoint(4), &corpus(&abc, "abc"), run).unwrap_err();
        assert!(matches!(e, PlanError::CarriedRows { rows: 4, batch_size: 8, .. }), "{e:?}");
        // A checkpoint from before token checksums were recorded is not checked for them.
        let old = RunRecord { tokens_sha256: None, ..record() };
        assert!(old.check_resume_corpus(&checkpoint(8), &corpus(&abc, "abd"), run).is_ok());
    }

    #[test]
    fn the_outcome_is_recorded() {
        let mut rec = record();
        let last_eval = Some(EvalReport { step: 30, epoch: 1, epoch_end: false, loss: 1.5 });
        let summary = RunSummary {
            last_step: 35,
            steps: 35,
            tokens: 4480,
            train_time: Duration::from_secs(2),
            last_train_loss: 1.4,
            last_eval,
            stopped: true,
            time: None,
        };
        rec.record_outcome(&summary);
        assert_eq!(
            (rec.steps, rec.val_loss, rec.val_loss_step, rec.tokens_per_sec),
            (35, Some(1.5), Some(30), Some(2240.0))
        );
    }

    #[test]
    fn the_origin_gives_the_shape_and_the_trainer() {
        let options = record().train_options();
        for origin in [Origin::Weights(Model::new(MODEL, 1)), Origin::Checkpoint(Box::new(checkpoint(8)))] {
            assert_eq!(origin.config(), MODEL);
            let resumed = matches!(origin, Origin::Checkpoint(_));
            let mut trainer = Trainer::new(origin, &options, Layout::default());
            assert_eq!(trainer.model().config, MODEL);
            assert_eq!(trainer.gather_snapshot().adam_step, if resumed { 3 } else { 0 });
        }
    }
}
