//! `qtask gen`: print the tasks a template generates.

use std::path::PathBuf;

use clap::Args;

use crate::flags::GenFlags;
use crate::output;

/// Arguments of `qtask gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub flags: GenFlags,
    /// Write the JSON array here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `qtask gen`.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let (tasks, _) = args.flags.generate()?;
    output::write_json(&tasks, args.out.as_deref())?;
    if let Some(out) = &args.out {
        // stderr: stdout stays empty for scripts that only wanted the file.
        eprintln!(
            "wrote {} task(s) to {} ({})",
            tasks.len(),
            out.display(),
            output::file_size(out)
        );
    }
    Ok(())
}
