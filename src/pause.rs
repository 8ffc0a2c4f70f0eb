//! `pause` and `resume`: the container's cgroup frozen and thawed (the status `paused` is then
//! derived from the freezer on every read).
//! runs in: the runtime.

use crate::error::{Error, Result};
use crate::events;
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    let st = dir.load()?;
    let status = dir.status(&st);
    if status != Status::Running {
        return Err(Error::WrongState {
            id: id.to_string(),
            status: status.to_string(),
            hint: "only a running container can be paused".into(),
        });
    }
    if st.cgroup.paths.is_empty() {
        return Err(no_cgroup(id));
    }
    crate::cgroup::pause(&st.cgroup)?;
    events::record(
        &dir.path,
        events::Type::Normal,
        "Paused",
        &format!("Paused container {id}"),
    )
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    let st = dir.load()?;
    let status = dir.status(&st);
    if status != Status::Paused {
        return Err(Error::WrongState {
            id: id.to_string(),
            status: status.to_string(),
            hint: "only a paused container can be resumed".into(),
        });
    }
    if st.cgroup.paths.is_empty() {
        return Err(no_cgroup(id));
    }
    crate::cgroup::resume(&st.cgroup)?;
    events::record(
        &dir.path,
        events::Type::Normal,
        "Resumed",
        &format!("Resumed container {id}"),
    )
}

fn no_cgroup(id: &str) -> Error {
    Error::invalid(format!(
        "container \"{id}\" has no cgroup (created rootless): it cannot be paused or resumed"
    ))
}
