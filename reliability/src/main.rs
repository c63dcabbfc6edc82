//! `make reliability`: drills against the real server binary that count lost and duplicated
//! work. See RELIABILITY.md for what each drill does and its latest figures.
//!
//! ```text
//! reliability --server PATH [--scale full|ci] [--seed N] [--postgres URL] [DRILL...]
//! reliability --server PATH load [--seconds N] [--think-ms N] [--upload-kib-per-s N]
//! reliability --server PATH served [--baseline PATH]
//! ```
//! Drills: `crash`, `storage-outage`, `executor-faults`, `database-restart` (it needs
//! `--postgres`), `federation`; all by default. Exits 1 when any drill lost or duplicated anything, or
//! could not finish. `load` is the load test (`load.rs`); it exits 1 when a request failed.
//! `served` measures uploads and event latency through the listeners of each binary
//! (`served.rs`), the baseline first.

mod drills;
mod load;
mod platform;
mod proxy;
mod served;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use drills::{Row, Scale};

const DRILLS: [&str; 5] = [
    "crash",
    "storage-outage",
    "executor-faults",
    "database-restart",
    "federation",
];

struct Options {
    server: PathBuf,
    scale: Scale,
    scale_name: String,
    seed: u64,
    postgres: Option<String>,
    drills: Vec<String>,
    load: Option<load::LoadOptions>,
    /// `served`: the binaries measured before `server`, as its baselines.
    served: Option<Vec<PathBuf>>,
}

fn options() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        server: PathBuf::new(),
        scale: Scale::full(),
        scale_name: "full".into(),
        seed: rand::random::<u32>().into(),
        postgres: None,
        drills: Vec::new(),
        load: None,
        served: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--server" => options.server = value("--server")?.into(),
            "--scale" => {
                options.scale_name = value("--scale")?;
                options.scale = match options.scale_name.as_str() {
                    "full" => Scale::full(),
                    "ci" => Scale::ci(),
                    other => bail!("--scale: {other:?} is neither full nor ci"),
                };
            }
            "--seed" => options.seed = value("--seed")?.parse().context("--seed: not a number")?,
            "--postgres" => options.postgres = Some(value("--postgres")?),
            "load" => options.load = Some(load::LoadOptions::default()),
            "served" => options.served = Some(Vec::new()),
            "--baseline" => {
                let path = value("--baseline")?.into();
                (options.served.as_mut())
                    .context("--baseline: only with served")?
                    .push(path);
            }
            "--seconds" | "--think-ms" | "--upload-kib-per-s" => {
                let number: u64 = value(&arg)?
                    .parse()
                    .with_context(|| format!("{arg}: not a number"))?;
                let load =
                    (options.load.as_mut()).with_context(|| format!("{arg}: only with load"))?;
                match arg.as_str() {
                    "--seconds" => load.seconds = number,
                    "--think-ms" => load.think = std::time::Duration::from_millis(number),
                    _ => load.upload_rate = number * 1024,
                }
            }
            drill if DRILLS.contains(&drill) => options.drills.push(drill.to_string()),
            other => bail!("unknown argument {other:?} (drills: {})", DRILLS.join(", ")),
        }
    }
    if options.server.as_os_str().is_empty() {
        bail!("--server: the path of the server binary is required");
    }
    if options.drills.is_empty() {
        options.drills = DRILLS.iter().map(|d| d.to_string()).collect();
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let dir = match tempfile::Builder::new().prefix("oscar-drills-").tempdir() {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("error: cannot make a temporary directory: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(baselines) = &options.served {
        let servers: Vec<_> = (baselines.iter().chain([&options.server]))
            .map(PathBuf::as_path)
            .collect();
        let result = served::run(&servers, dir.path()).await;
        return finished("served", result, dir);
    }
    if let Some(load) = &options.load {
        let result = load::run(&options.server, dir.path(), load).await;
        return finished("load", result, dir);
    }
    println!(
        "reliability drills, scale {}, seed {}, in {}",
        options.scale_name,
        options.seed,
        dir.path().display()
    );
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for drill in &options.drills {
        println!("running {drill} …");
        let (server, dir, scale) = (&options.server, dir.path(), &options.scale);
        let result = match drill.as_str() {
            "crash" => drills::crash(server, dir, scale, options.seed).await,
            "storage-outage" => drills::storage_outage(server, dir, scale).await,
            "executor-faults" => drills::executor_faults(server, dir, scale).await,
            "federation" => drills::federation(server, dir, scale).await,
            "database-restart" => match &options.postgres {
                Some(url) => drills::database_restart(server, dir, scale, url).await,
                None => Err(anyhow::anyhow!("--postgres: a PostgreSQL URL is required")),
            },
            _ => unreachable!("checked in options()"),
        };
        match result {
            Ok(row) => {
                println!("  {}", row.notes);
                if row.lost > 0 || row.duplicated > 0 {
                    failures.push(format!(
                        "{drill}: {} lost, {} duplicated",
                        row.lost, row.duplicated
                    ));
                }
                rows.push(row);
            }
            Err(err) => failures.push(format!("{drill}: {err:#}")),
        }
    }
    print_table(&rows);
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for failure in &failures {
            eprintln!("FAILED {failure}");
        }
        // Kept for the post-mortem: every server's log is in there.
        eprintln!("drill data kept in {}", dir.keep().display());
        ExitCode::from(1)
    }
}

/// How `load` or `served` ended; a failed run keeps its data (the server's log) for a look.
fn finished(what: &str, result: anyhow::Result<()>, dir: tempfile::TempDir) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("FAILED {what}: {err:#}");
            eprintln!("data kept in {}", dir.keep().display());
            ExitCode::from(1)
        }
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| drill | inputs | jobs | succeeded | failed as meant | lost | duplicated | time |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | **{}** | **{}** | {:.0} s |",
            row.drill,
            row.inputs,
            row.jobs,
            row.succeeded,
            row.failed_as_expected,
            row.lost,
            row.duplicated,
            row.seconds
        );
    }
    println!();
    for row in rows {
        println!("- {}: {}", row.drill, row.notes);
    }
}
