//! The `cairn` server binary. See `cairn --help` and docs/operations.md.

use clap::Parser;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // `cairn snapshot restore ...` builds a data dir instead of serving.
    if std::env::args().nth(1).as_deref() == Some("snapshot") {
        std::process::exit(cairn_engine::server::restore::main(
            std::env::args().collect(),
        ));
    }
    let config = cairn_engine::config::Config::parse();
    cairn_engine::server::init_logging(&config.log_level);
    if let Err(e) = config.validate() {
        eprintln!("cairn: {e}");
        std::process::exit(2);
    }
    if let Err(e) = cairn_engine::server::run(config) {
        tracing::error!("{e}");
        eprintln!("cairn: {e}");
        std::process::exit(1);
    }
}
