//! Prints the path of the flatc binary that the pinned `flatc` crate built
//! from source. scripts/gen-wire.sh runs this and then runs that flatc.

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = flatc::flatc();
    if !path.exists() {
        eprintln!("flatc was not built at {}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{}", path.display());
    ExitCode::SUCCESS
}
