//! cairnctl: the command-line client for cairn. etcdctl's commands, flags,
//! environment variables (spelled `CAIRNCTL_*`), output and exit codes.

use std::io::{BufWriter, Write};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            std::process::exit(cairn_client::ctl::exit::ExitCode::Error as i32);
        }
    };
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let stdout = std::io::stdout();
    let mut stdout = BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    let code = {
        let mut io = cairn_client::ctl::Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        runtime.block_on(cairn_client::ctl::main_with(
            std::env::args_os().collect(),
            &mut io,
        ))
    };
    // Best effort: stdout is flushed by main_with already; a failure here
    // has nowhere left to be reported.
    let _ = stdout.flush();
    let _ = stderr.flush();
    std::process::exit(code);
}
