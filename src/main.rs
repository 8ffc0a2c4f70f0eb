//! hookrun's entry point: parse the command line, set up logging, dispatch, map errors to an
//! exit code. runs in: the runtime.

use hookrun::cli::Command;

fn main() {
    // A reader that goes away (`hookrun describe x | head`) ends our output: leave quietly, with
    // the status a shell gives a process killed by SIGPIPE, instead of a panic message. Rust
    // ignores SIGPIPE so that sockets and hook pipes report EPIPE rather than killing us.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
    let cli = hookrun::cli::parse();
    // runc's convention: an exec that fails to start exits 255, leaving every other status to
    // the process itself.
    let failed = if matches!(cli.cmd, Command::Exec { .. }) {
        255
    } else {
        1
    };
    let g = &cli.global;
    if let Err(e) = hookrun::log::init(g.log.clone(), g.log_format, g.debug) {
        eprintln!("{}", hookrun::log::error_line(&e.to_string()));
        std::process::exit(failed);
    }
    match hookrun::dispatch::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            hookrun::log::error(e.to_string());
            std::process::exit(failed);
        }
    }
}
