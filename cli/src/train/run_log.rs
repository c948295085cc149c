//! The run's log in the output directory: `log.csv` (one row per step: step, epoch, train
//! loss, validation loss when measured, tokens/s, learning rate, and the run's wall-clock
//! seconds after the step, earlier sessions included) and, at the end, `loss.svg`
//! (training and validation loss against step).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use charrnn_fileio::atomic_file::write_atomic;
use plotters::prelude::*;

pub const LOG_FILE: &str = "log.csv";
pub const PLOT_FILE: &str = "loss.svg";
const HEADER: &str = "step,epoch,train_loss,val_loss,tokens_per_sec,lr,elapsed_s";
/// The header of logs written before the elapsed time was logged: still ours.
const HEADER_WITHOUT_TIME: &str = "step,epoch,train_loss,val_loss,tokens_per_sec,lr";
/// Appended to every `loss.svg`: how a later run knows the plot is this program's to remove.
const PLOT_MARKER: &str = "<!-- charrnn-fast loss plot -->";
/// The plot's caption, which plots written before the marker carry.
const PLOT_CAPTION: &str = "charrnn-fast: loss (";

/// Whether `path` is a run log this program wrote: its first line is exactly our header.
pub fn is_log(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| {
        let mut first = String::new();
        BufReader::new(f).read_line(&mut first).is_ok()
            && [HEADER, HEADER_WITHOUT_TIME].contains(&first.trim_end_matches(['\n', '\r']))
    })
}

/// Whether `path` is a loss plot this program drew (its marker, or its caption).
pub fn is_plot(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| {
        let text = String::from_utf8_lossy(&bytes);
        text.contains("<svg") && (text.contains(PLOT_MARKER) || text.contains(PLOT_CAPTION))
    })
}

struct Row {
    step: u64,
    epoch: u64,
    train_loss: f64,
    val_loss: Option<f64>,
    tokens_per_sec: f64,
    lr: f64,
    elapsed: Duration,
}

pub struct RunLog {
    path: PathBuf,
    out: BufWriter<File>,
    pending: Option<Row>,
    train: Vec<(u64, f64)>,
    val: Vec<(u64, f64)>,
}

impl RunLog {
    /// Opens `dir/log.csv` for a new run, or for one resumed from the checkpoint of step
    /// `resume.1` in directory `resume.0`: the rows of that run's log up to that step are kept
    /// (later ones were written after the checkpoint, before a crash).
    pub fn open(dir: &Path, resume: Option<(&Path, u64)>) -> Result<RunLog> {
        let path = dir.join(LOG_FILE);
        let mut train = vec![];
        let mut val = vec![];
        let mut kept = vec![HEADER.to_owned()];
        let previous = resume.and_then(|(from, limit)| Some((File::open(from.join(LOG_FILE)).ok()?, limit)));
        if let Some((file, limit)) = previous {
            for line in BufReader::new(file).lines().map_while(|l| l.ok()).skip(1) {
                let fields: Vec<&str> = line.split(',').collect();
                let Some(step) = fields.first().and_then(|s| s.parse::<u64>().ok()) else { continue };
                if step > limit {
                    continue;
                }
                if let Some(loss) = fields.get(2).and_then(|s| s.parse::<f64>().ok()) {
                    train.push((step, loss));
                }
                if let Some(loss) = fields.get(3).and_then(|s| s.parse::<f64>().ok()) {
                    val.push((step, loss));
                }
                // A row of a log from before the elapsed time was logged gets an empty field.
                if fields.len() == 6 {
                    kept.push(format!("{line},"));
                } else {
                    kept.push(line);
                }
            }
        }
        // The rows kept replace the file in one atomic write, so that a run stopped at once (a
        // second Ctrl-C, a kill) before its first step never loses the rows of the run it
        // resumes; the steps to come are appended.
        let mut text = kept.join("\n");
        text.push('\n');
        write_atomic(&path, text.as_bytes()).with_context(|| format!("cannot write '{}'", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
        let out = BufWriter::new(file);
        Ok(RunLog { path, out, pending: None, train, val })
    }

    pub fn step(&mut self, step: u64, epoch: u64, train_loss: f64, tokens_per_sec: f64, lr: f64, elapsed: Duration) {
        self.pending = Some(Row { step, epoch, train_loss, val_loss: None, tokens_per_sec, lr, elapsed });
        self.train.push((step, train_loss));
    }

    pub fn eval(&mut self, step: u64, loss: f64) {
        if let Some(row) = self.pending.as_mut().filter(|r| r.step == step) {
            row.val_loss = Some(loss);
        }
        self.val.push((step, loss));
    }

    /// Writes the pending row; flushes so that the file is current when the process dies.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(r) = self.pending.take() {
            let val = r.val_loss.map_or(String::new(), |v| format!("{v:.6}"));
            writeln!(
                self.out,
                "{},{},{:.6},{val},{:.1},{},{:.3}",
                r.step,
                r.epoch,
                r.train_loss,
                r.tokens_per_sec,
                r.lr,
                r.elapsed.as_secs_f64()
            )?;
        }
        self.out.flush().with_context(|| format!("cannot write '{}'", self.path.display()))
    }

    /// Draws `loss.svg` next to the log (atomically, marked as ours).
    pub fn plot(&self) -> Result<PathBuf> {
        let path = self.path.with_file_name(PLOT_FILE);
        let mut svg = String::new();
        draw(&mut svg, &self.train, &self.val).map_err(|e| anyhow::anyhow!("cannot draw '{}': {e}", path.display()))?;
        svg.push_str(PLOT_MARKER);
        svg.push('\n');
        write_atomic(&path, svg.as_bytes()).with_context(|| format!("cannot write '{}'", path.display()))?;
        Ok(path)
    }
}

fn draw(svg: &mut String, train: &[(u64, f64)], val: &[(u64, f64)]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = train.iter().chain(val).map(|p| p.0).max().unwrap_or(1).max(1);
    let finite = |p: &&(u64, f64)| p.1.is_finite();
    let top = train.iter().chain(val).filter(finite).map(|p| p.1).fold(0.1f64, f64::max);
    let bottom = train.iter().chain(val).filter(finite).map(|p| p.1).fold(top, f64::min);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{PLOT_CAPTION}nats/char)"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0u64..last, (bottom * 0.95)..(top * 1.02))?;
    chart.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    chart
        .draw_series(LineSeries::new(train.iter().filter(finite).copied(), &BLUE.mix(0.6)))?
        .label("training (per batch)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(val.iter().filter(finite).copied(), RED.stroke_width(2)))?
        .label("validation")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.draw_series(val.iter().filter(finite).map(|&p| Circle::new(p, 3, RED.filled())))?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
