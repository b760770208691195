//! `simulate schema`: the JSON Schema of the scenario format (for editors and other tools), or
//! the Markdown reference, both generated from the declaration the loader checks keys against.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_PASS, write_atomically};
use crate::scenario::schema;

/// Options of `simulate schema`.
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Print the scenario reference as Markdown (the tables of docs/scenarios.md) instead of the schema.
    #[arg(long, conflicts_with = "limits")]
    markdown: bool,
    /// Print the table of hard limits as Markdown (the table of docs/limits.md).
    #[arg(long)]
    limits: bool,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub(super) fn schema_command(args: &SchemaArgs) -> u8 {
    let text = if args.markdown {
        schema::markdown()
    } else if args.limits {
        schema::limits_markdown()
    } else {
        schema::json_schema_text()
    };
    match &args.out {
        None => {
            print!("{text}");
            EXIT_PASS
        }
        Some(path) => match write_atomically(path, &text) {
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                EXIT_PASS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                EXIT_INVALID
            }
        },
    }
}
