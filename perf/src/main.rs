//! `cairn-perf`: see the crate documentation and docs/perf-harness.md.

use std::process::ExitCode;

use clap::Parser;

use cairn_perf::cli::{Cli, Command, MvccCommand, OutputFormat, MVCC_TOTAL_DEFAULT};
use cairn_perf::compare::compare;
use cairn_perf::html::write_report;
use cairn_perf::mvcc_bench::{run_mvcc_put, MvccPutSpec};
use cairn_perf::run::run;
use cairn_perf::text::{render, render_comparison};
use cairn_perf::PerfError;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = usize::from(cli.global.client_threads);
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: &Cli) -> Result<(), PerfError> {
    let global = &cli.global;
    match &cli.command {
        Command::Workload(workload) => {
            let spec = global.run_spec(workload)?;
            let summary = run(&spec).await?;
            match global.output {
                OutputFormat::Text => out(&render(&summary)),
                OutputFormat::Json => out(&to_json(&summary)),
            }
            if let Some(dir) = &global.report {
                let path = write_report(dir, &[&summary])?;
                eprintln!("report written to {}", path.display());
            }
        }
        Command::Mvcc(MvccCommand::Put(args)) => {
            let spec = MvccPutSpec {
                total: global.total.unwrap_or(MVCC_TOTAL_DEFAULT),
                key_size: global.key_size,
                val_size: global.val_size,
                txn_ops: args.txn.then_some(args.txn_ops),
            };
            let summary = run_mvcc_put(spec)?;
            match global.output {
                OutputFormat::Text => out(&render(&summary)),
                OutputFormat::Json => out(&to_json(&summary)),
            }
            if let Some(dir) = &global.report {
                let path = write_report(dir, &[&summary])?;
                eprintln!("report written to {}", path.display());
            }
        }
        Command::Compare(args) => {
            let spec = args.compare_spec(global)?;
            let comparison = compare(&spec, &|note| eprintln!("{note}")).await?;
            match global.output {
                OutputFormat::Text => {
                    let mut text = render(&comparison.etcd);
                    if let Some(cairn) = &comparison.cairn {
                        text.push('\n');
                        text.push_str(&render(cairn));
                        text.push('\n');
                        text.push_str(&render_comparison(&comparison.etcd, cairn));
                    } else if let Some(reason) = &comparison.cairn_missing {
                        text.push_str(&format!("\nNo cairn result: {reason}\n"));
                    }
                    out(&text);
                }
                OutputFormat::Json => out(&to_json(&comparison)),
            }
            if let Some(dir) = &global.report {
                let mut runs = vec![&comparison.etcd];
                runs.extend(comparison.cairn.as_ref());
                let path = write_report(dir, &runs)?;
                eprintln!("report written to {}", path.display());
            }
        }
    }
    Ok(())
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Summaries hold only numbers, strings and maps with string keys, which
    // always serialise.
    let mut json = serde_json::to_string_pretty(value).expect("summaries serialise to JSON");
    json.push('\n');
    json
}
