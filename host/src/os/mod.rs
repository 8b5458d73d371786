//! What the operating system says, looked up on demand: a process's executable, owner and
//! lineage, this machine's names and address, applications' human names, which kind of desktop
//! session runs. Sources fill events' fields from here and actions check a PID here before they
//! touch it; nothing here produces events or acts.

pub mod apps;
pub mod process;
pub mod session;
