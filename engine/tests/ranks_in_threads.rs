//! A data-parallel run's processes, played by threads of this test through an in-memory
//! [`Collective`]: two processes of one part each train bit for bit as one process of two
//! parts (steps, evaluation, the gathered carried state), each reading only its own rows;
//! three processes equal three parts when the group sums in rank order; a state gathered
//! from a group resumes in one process; and a run (`training::run`) hands its checkpoints to
//! process 0 alone and stops every process at the step one of them was asked to. (The MPI group of the command line is tested under
//! `mpiexec` by `cli/tests/mpi_ranks.rs`.)

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use charrnn_engine::data::{Batcher, TokenStream, TokenWidth, Vocab};
use charrnn_engine::files::checkpoint::{
    load_checkpoint, save_checkpoint, CheckpointMeta, TrainingSnapshot, CHECKPOINT_FILE,
};
use charrnn_engine::training::collective::{Collective, Solo};
use charrnn_engine::training::time_budget::{CosineOverBudget, RunClock};
use charrnn_engine::training::{
    run, EvalReport, Layout, Observer, Schedule, StepReport, TimeLimit, TrainOptions, Trainer,
};
use charrnn_engine::AdamHyper;
use charrnn_engine::Precision;
use charrnn_engine::{CellKind, Model, ModelConfig, State};
use serde_json::json;

const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Rnn, CellKind::Gru];
const VOCAB: u32 = 13;

/// What the processes of a group share: one slot per process, met at a barrier.
struct Meeting {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

/// One process of an in-memory group: sums in rank order, `((x0 + x1) + x2) + …`.
struct ThreadRank {
    rank: usize,
    size: usize,
    meeting: Arc<Meeting>,
}

impl ThreadRank {
    fn group(size: usize) -> Vec<ThreadRank> {
        let meeting = Arc::new(Meeting {
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![vec![]; size]),
            bytes: Mutex::new(vec![]),
        });
        (0..size).map(|rank| ThreadRank { rank, size, meeting: meeting.clone() }).collect()
    }

    /// Publishes `mine`, waits for everyone, reads every slot with `read`, waits again (so
    /// that no slot is overwritten while another process still reads it).
    fn exchange(&self, mine: Vec<f64>, read: impl FnOnce(&[Vec<f64>])) {
        self.meeting.slots.lock().unwrap()[self.rank] = mine;
        self.meeting.barrier.wait();
        read(&self.meeting.slots.lock().unwrap());
        self.meeting.barrier.wait();
    }
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        self.exchange(values.iter().map(|&v| f64::from(v)).collect(), |slots| {
            for (i, v) in values.iter_mut().enumerate() {
                *v = slots[0][i] as f32;
                for slot in &slots[1..] {
                    *v += slot[i] as f32;
                }
            }
        });
    }

    fn sum_f64(&self, values: &mut [f64]) {
        self.exchange(values.to_vec(), |slots| {
            for (i, v) in values.iter_mut().enumerate() {
                *v = slots[0][i];
                for slot in &slots[1..] {
                    *v += slot[i];
                }
            }
        });
    }

    fn all_gather_f32(&self, mine: &[f32], counts: &[usize], all: &mut [f32]) {
        assert_eq!(counts[self.rank], mine.len());
        self.exchange(mine.iter().map(|&v| f64::from(v)).collect(), |slots| {
            let gathered: Vec<f32> = slots.iter().flatten().map(|&v| v as f32).collect();
            all.copy_from_slice(&gathered);
        });
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        if self.rank == 0 {
            *self.meeting.bytes.lock().unwrap() = bytes.clone();
        }
        self.meeting.barrier.wait();
        *bytes = self.meeting.bytes.lock().unwrap().clone();
        self.meeting.barrier.wait();
    }
}

/// What a run ends with, as every process sees it.
#[derive(Debug, PartialEq)]
struct Outcome {
    losses: Vec<f64>,
    eval: f64,
    params: Vec<f32>,
    state: State<f32>,
}

fn options(batch_size: usize, dropout: f64) -> TrainOptions {
    TrainOptions {
        batch_size,
        seq_len: 5,
        adam: AdamHyper::default(),
        clip: 1.0,
        dropout,
        output_dropout: dropout,
        weight_drop: dropout,
        state_reset: dropout,
        dropout_seed: 11,
        precision: Precision::F32,
    }
}

fn config(cell: CellKind) -> ModelConfig {
    ModelConfig { cell, vocab_size: VOCAB as usize, embed_size: 9, hidden_size: 21, num_layers: 3 }
}

/// A token file of pseudo-random ids in `dir`, mapped.
fn token_stream(dir: &Path) -> TokenStream {
    let path = dir.join("tokens.bin");
    let bytes: Vec<u8> = (0..3000u32).flat_map(|k| ((k * 7919 + k / 7) % VOCAB).to_le_bytes()[..2].to_vec()).collect();
    std::fs::write(&path, bytes).unwrap();
    TokenStream::open(&path, TokenWidth::U16).unwrap()
}

/// Four steps, an evaluation, the gathered state, on one process of `group` with `parts` parts.
fn train(
    cell: CellKind,
    stream: &TokenStream,
    options: &TrainOptions,
    parts: usize,
    group: Box<dyn Collective>,
) -> Outcome {
    let train = Batcher::new(stream, 0..2500, options.batch_size, options.seq_len, "training").unwrap();
    let val = Batcher::new(stream, 2500..3000, options.batch_size, options.seq_len, "validation").unwrap();
    let mut trainer = Trainer::new(Model::new(config(cell), 3), options, Layout { parts, group });
    let losses = (0..4).map(|i| trainer.step(&train, i).unwrap().loss).collect();
    let eval = trainer.evaluate(&val, &|| false).expect("nothing stops this evaluation");
    Outcome { losses, eval, params: trainer.model().params.clone(), state: trainer.gather_state() }
}

/// Runs `work` as each of `size` processes of a group, one thread each; returns what each
/// returned, in rank order.
fn in_group<T: Send>(size: usize, work: impl Fn(ThreadRank) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = ThreadRank::group(size).into_iter().map(|rank| scope.spawn(move || work(rank))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Runs `size` processes as threads (each with `parts` parts), returns each one's outcome.
fn train_in_group(
    cell: CellKind,
    stream: &TokenStream,
    options: &TrainOptions,
    size: usize,
    parts: usize,
) -> Vec<Outcome> {
    in_group(size, |rank| train(cell, stream, options, parts, Box::new(rank)))
}

fn solo(cell: CellKind, stream: &TokenStream, options: &TrainOptions, parts: usize) -> Outcome {
    train(cell, stream, options, parts, Box::new(Solo))
}

#[test]
fn two_processes_train_as_two_parts() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    for cell in CELLS {
        for dropout in [0.0, 0.3] {
            // An odd batch: the processes' blocks differ in size (3 and 4 rows).
            let options = options(7, dropout);
            let one = solo(cell, &stream, &options, 2);
            for outcome in train_in_group(cell, &stream, &options, 2, 1) {
                assert_eq!(outcome, one, "{cell:?}, dropout {dropout}");
            }
        }
    }
}

/// With weight drop a step's products read a masked copy of the recurrent weights; an
/// evaluation after it reads the weights themselves: the same loss as a trainer without any
/// dropout evaluating the same weights.
#[test]
fn an_evaluation_after_weight_dropped_steps_reads_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let val = Batcher::new(&stream, 2500..3000, 7, 5, "validation").unwrap();
    for cell in CELLS {
        let dropped = solo(cell, &stream, &TrainOptions { dropout: 0.0, output_dropout: 0.0, ..options(7, 0.3) }, 2);
        let mut model = Model::new(config(cell), 3);
        model.params.clone_from(&dropped.params);
        let mut plain = Trainer::new(model, &options(7, 0.0), Layout { parts: 2, ..Layout::default() });
        assert_eq!(plain.evaluate(&val, &|| false), Some(dropped.eval), "{cell:?}");
        let undropped = solo(cell, &stream, &options(7, 0.0), 2);
        assert_ne!(undropped.losses, dropped.losses, "{cell:?}: weight drop changed nothing");
    }
}

#[test]
fn three_processes_sum_as_three_parts_and_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(8, 0.0);
    for cell in CELLS {
        let one = solo(cell, &stream, &options, 3);
        let group = train_in_group(cell, &stream, &options, 3, 1);
        for outcome in &group {
            assert_eq!(outcome, &one, "{cell:?}");
        }
        // Two parts in each of three processes: another order of the sum, so close, not equal.
        let nested = train_in_group(cell, &stream, &options, 3, 2);
        let max = one.params.iter().zip(&nested[0].params).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max < 1e-5, "{cell:?}: parameters differ by {max}");
        assert_eq!(nested, train_in_group(cell, &stream, &options, 3, 2), "{cell:?}: not repeatable");
    }
}

/// A checkpoint written by a group (rank 0 writing the gathered snapshot) resumes in one
/// process, and in a group of the same layout, where the group would have gone on.
#[test]
fn a_group_checkpoint_resumes_in_one_process_and_in_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(7, 0.0);
    let vocab = Vocab::from_symbols_chars("abcdefghijklm".chars().collect()).unwrap();
    let batches = Batcher::new(&stream, 0..2500, 7, 5, "training").unwrap();
    let checkpoint = dir.path().join(CHECKPOINT_FILE);
    // Two steps, a checkpoint, two more: the parameters after each step.
    let group_params: Vec<Vec<Vec<f32>>> = in_group(2, |rank| {
        let mut trainer =
            Trainer::new(Model::new(config(CellKind::Lstm), 3), &options, Layout { parts: 1, group: Box::new(rank) });
        let mut params = vec![];
        for i in 0..4 {
            trainer.step(&batches, i).unwrap();
            params.push(trainer.model().params.clone());
            if i == 1 {
                let writer = trainer.group().rank() == 0;
                let snapshot = trainer.gather_snapshot();
                if writer {
                    save_checkpoint(&checkpoint, &snapshot, &vocab, CheckpointMeta::new(2, json!({}))).unwrap();
                }
            }
        }
        params
    });
    assert_eq!(group_params[0], group_params[1], "the processes' weights parted");
    let expected = &group_params[0][2..];
    let resumed_steps = |trainer: &mut Trainer| -> Vec<Vec<f32>> {
        (2..4)
            .map(|i| {
                trainer.step(&batches, i).unwrap();
                trainer.model().params.clone()
            })
            .collect()
    };
    // One process of two parts: the same sums, so the same bits.
    let mut one =
        Trainer::new(load_checkpoint(&checkpoint).unwrap(), &options, Layout { parts: 2, group: Box::new(Solo) });
    assert_eq!(resumed_steps(&mut one), expected);
    // One process of one part: another order of the sum, close.
    let mut single =
        Trainer::new(load_checkpoint(&checkpoint).unwrap(), &options, Layout { parts: 1, group: Box::new(Solo) });
    let last = resumed_steps(&mut single).pop().unwrap();
    let max = last.iter().zip(&expected[1]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-5, "parameters differ by {max}");
    // The same group again.
    let again = in_group(2, |rank| {
        let mut trainer =
            Trainer::new(load_checkpoint(&checkpoint).unwrap(), &options, Layout { parts: 1, group: Box::new(rank) });
        resumed_steps(&mut trainer)
    });
    assert_eq!(again[0], expected);
    assert_eq!(again[1], expected);
}

/// A stop request seen by one process only (a Ctrl-C reaches the ranks at different moments)
/// abandons the evaluation on every process alike: none is left waiting, none reports a loss
/// of part of the split, and the carried training state is untouched, so that the next
/// evaluation gives the full split's loss.
#[test]
fn an_evaluation_stopped_on_one_process_is_abandoned_on_all() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(6, 0.0);
    let cell = CellKind::Lstm;
    let whole = solo(cell, &stream, &options, 2);
    let outcomes = in_group(2, |rank| {
        let stops_here = rank.rank == 1;
        let train = Batcher::new(&stream, 0..2500, options.batch_size, options.seq_len, "training").unwrap();
        let val = Batcher::new(&stream, 2500..3000, options.batch_size, options.seq_len, "validation").unwrap();
        let mut trainer =
            Trainer::new(Model::new(config(cell), 3), &options, Layout { parts: 1, group: Box::new(rank) });
        let losses: Vec<f64> = (0..4).map(|i| trainer.step(&train, i).unwrap().loss).collect();
        // Rank 1 is asked to stop after its second validation batch.
        let polls = std::cell::Cell::new(0);
        let stopped = trainer.evaluate(&val, &|| {
            polls.set(polls.get() + 1);
            stops_here && polls.get() > 2
        });
        let eval = trainer.evaluate(&val, &|| false);
        (
            stopped,
            Outcome {
                losses,
                eval: eval.unwrap(),
                params: trainer.model().params.clone(),
                state: trainer.gather_state(),
            },
        )
    });
    for (stopped, outcome) in outcomes {
        assert_eq!(stopped, None);
        assert_eq!(outcome, whole);
    }
}

/// What a run hands an observer, and a stop it asks for: once `stop_after` steps are reported,
/// or once it has written a checkpoint when `stop_on_write`.
#[derive(Debug, Default, PartialEq)]
struct Recorder {
    steps: Vec<u64>,
    /// Each step's learning rate.
    rates: Vec<f64>,
    evals: Vec<u64>,
    /// Each checkpoint's step, carried state and weights.
    checkpoints: Vec<(u64, State<f32>, Vec<f32>)>,
    stop_after: Option<u64>,
    stop_on_write: bool,
    stop: bool,
}

impl Observer for Recorder {
    type Error = Infallible;

    fn on_step(&mut self, report: &StepReport) {
        self.steps.push(report.step);
        self.rates.push(report.lr);
        self.stop |= self.stop_after == Some(report.step);
    }

    fn on_eval(&mut self, report: &EvalReport, _trainer: &Trainer) -> Result<(), Infallible> {
        self.evals.push(report.step);
        Ok(())
    }

    fn save_checkpoint(&mut self, step: u64, snapshot: &TrainingSnapshot<'_>) -> Result<(), Infallible> {
        self.checkpoints.push((step, snapshot.state.clone(), snapshot.model.params.clone()));
        self.stop |= self.stop_on_write;
        Ok(())
    }

    fn stop_requested(&self) -> bool {
        self.stop
    }
}

fn schedule(total_steps: u64, eval_every: u64, checkpoint_every: u64) -> Schedule {
    Schedule {
        start_step: 0,
        total_steps,
        eval_every,
        checkpoint_every,
        lr: 2e-3,
        lr_decay: None,
        time: None,
        clock: RunClock::new(Duration::ZERO, Instant::now()),
    }
}

/// A schedule of at most `total_steps` in a budget of `budget`, of which `used` is spent.
fn timed_schedule(total_steps: u64, budget: Duration, used: Duration) -> Schedule {
    Schedule {
        time: Some(TimeLimit { total: budget, lr: CosineOverBudget::DEFAULT }),
        clock: RunClock::new(used, Instant::now()),
        ..schedule(total_steps, 0, 0)
    }
}

/// `training::run` of `schedule` on one process of `group` with `parts` parts: the observer
/// afterwards, and the run's last step and whether it stopped early.
fn run_observed(
    stream: &TokenStream,
    options: &TrainOptions,
    layout: Layout,
    schedule: Schedule,
    mut recorder: Recorder,
) -> (Recorder, u64, bool) {
    let train = Batcher::new(stream, 0..2500, options.batch_size, options.seq_len, "training").unwrap();
    let val = Batcher::new(stream, 2500..3000, options.batch_size, options.seq_len, "validation").unwrap();
    let mut trainer = Trainer::new(Model::new(config(CellKind::Lstm), 3), options, layout);
    let summary = run(&mut trainer, &train, Some(&val), schedule, &mut recorder).unwrap();
    (recorder, summary.last_step, summary.stopped)
}

/// The run checkpoints every `checkpoint_every` steps and after the last, in a group as in one
/// process: every process joins each gather, and the writer (process 0) alone is handed the
/// snapshot, which holds every row's carried state.
#[test]
fn the_run_hands_its_checkpoints_to_the_writer_alone() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(7, 0.0);
    let schedule = schedule(7, 5, 3);
    let layout = Layout { parts: 2, group: Box::new(Solo) };
    let (one, last_step, stopped) = run_observed(&stream, &options, layout, schedule, Recorder::default());
    assert_eq!((last_step, stopped), (7, false));
    assert_eq!((&one.steps[..], &one.evals[..]), (&[1, 2, 3, 4, 5, 6, 7][..], &[5, 7][..]));
    assert_eq!(one.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), [3, 6, 7]);
    let group = in_group(2, |rank| {
        let layout = Layout { parts: 1, group: Box::new(rank) };
        run_observed(&stream, &options, layout, schedule, Recorder::default())
    });
    assert_eq!(group[0], (one, 7, false));
    let (follower, _, _) = &group[1];
    assert!(follower.checkpoints.is_empty(), "a follower was handed a checkpoint");
    assert_eq!((&follower.steps, &follower.evals), (&group[0].0.steps, &group[0].0.evals));
}

/// A stop asked of one process only stops every process after the same step, with one
/// checkpoint of that step; asked before an evaluation, it abandons the evaluation everywhere.
#[test]
fn a_stop_asked_of_one_process_stops_every_one_after_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(6, 0.0);
    // Step 4 is followed by no evaluation, step 5 by one, which the stop abandons.
    for stop_after in [4, 5] {
        let group = in_group(2, |rank| {
            let stop_after = (rank.rank == 1).then_some(stop_after);
            let layout = Layout { parts: 1, group: Box::new(rank) };
            run_observed(&stream, &options, layout, schedule(20, 5, 0), Recorder { stop_after, ..Recorder::default() })
        });
        for (rank, (recorder, last_step, stopped)) in group.iter().enumerate() {
            assert_eq!((*last_step, *stopped), (stop_after, true), "rank {rank}, a stop after step {stop_after}");
            assert!(recorder.evals.is_empty(), "rank {rank} evaluated, a stop after step {stop_after}");
        }
        let written: Vec<u64> = group[0].0.checkpoints.iter().map(|c| c.0).collect();
        assert_eq!(written, [stop_after]);
    }
}

/// A stop asked while a checkpoint is written stops the run after that step, on that
/// checkpoint, with no other written.
#[test]
fn a_stop_asked_during_a_checkpoint_write_stops_the_run_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(6, 0.0);
    let recorder = Recorder { stop_on_write: true, ..Recorder::default() };
    let (recorder, last_step, stopped) =
        run_observed(&stream, &options, Layout::default(), schedule(10, 0, 2), recorder);
    assert_eq!((last_step, stopped), (2, true));
    assert_eq!(recorder.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), [2]);
}

/// A budgeted run ends on time, after a last evaluation and checkpoint, with the rate decayed
/// near its floor; in a group every process follows process 0's clock (here process 1's clock
/// says a third of the budget is gone: alone it would stop sooner, and take other rates), so all
/// take the same rates and stop after the same step.
#[test]
fn a_time_budget_ends_every_process_on_time_after_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let stream = token_stream(dir.path());
    let options = options(6, 0.0);
    let budget = Duration::from_millis(1500);
    let started = Instant::now();
    let (one, last_step, stopped) = run_observed(
        &stream,
        &options,
        Layout { parts: 1, group: Box::new(Solo) },
        timed_schedule(u64::MAX, budget, Duration::ZERO),
        Recorder::default(),
    );
    let took = started.elapsed();
    assert!(!stopped, "a budget spent is the end of the run, not a stop");
    assert!(took <= budget + Duration::from_millis(500), "a 1.5 s budget took {took:?}");
    assert!(last_step > 10, "only {last_step} steps in 1.5 s");
    assert_eq!(one.evals.last(), Some(&last_step), "the last step is evaluated");
    assert_eq!(one.checkpoints.last().map(|c| c.0), Some(last_step), "and checkpointed");
    let (first, last) = (one.rates[0], *one.rates.last().unwrap());
    assert!(first < 2e-3 * 0.5, "the first step is in the warm-up (rate {first})");
    assert!((2e-3 * 0.1..2e-3 * 0.2).contains(&last), "the rate ends near its floor (rate {last})");

    let group = in_group(2, |rank| {
        let used = if rank.rank() == 0 { Duration::ZERO } else { Duration::from_millis(500) };
        let layout = Layout { parts: 1, group: Box::new(rank) };
        run_observed(&stream, &options, layout, timed_schedule(u64::MAX, budget, used), Recorder::default())
    });
    let (leader, follower) = (&group[0].0, &group[1].0);
    assert_eq!(group[0].1, group[1].1, "both processes stop after the same step");
    assert_eq!((&leader.steps, &leader.rates, &leader.evals), (&follower.steps, &follower.rates, &follower.evals));
    assert!(follower.checkpoints.is_empty());
}
