//! Authorization: whether an authenticated caller may read or write a folder.
//! The services call [`authorize`] with the action and the folder they
//! resolved for the resource; this is the one place that decides.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::ApiError;

/// Which folders a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderAccess {
    All,
    Only(HashSet<Box<str>>),
}

/// What a call does to the folder of its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    /// Create, Update, Delete, and cancelling their operations.
    Write,
}

/// Who is calling, as the authentication layer found out from the token; it
/// sits in the request extensions. Without one, authentication is off.
#[derive(Debug)]
pub struct Caller {
    subject: Box<str>,
    folders: FolderAccess,
    /// The folders it may write; a folder it writes it also reads.
    writes: FolderAccess,
}

impl Caller {
    /// A caller that may read `folders` and write none.
    pub fn new(subject: impl Into<Box<str>>, folders: FolderAccess) -> Self {
        Self::with_writes(subject, folders, FolderAccess::Only(Default::default()))
    }

    pub fn with_writes(
        subject: impl Into<Box<str>>,
        folders: FolderAccess,
        writes: FolderAccess,
    ) -> Self {
        Self {
            subject: subject.into(),
            folders,
            writes,
        }
    }

    pub fn may_write(&self, folder: &str) -> bool {
        match &self.writes {
            FolderAccess::All => true,
            FolderAccess::Only(folders) => folders.contains(folder),
        }
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn may_read(&self, folder: &str) -> bool {
        match &self.folders {
            FolderAccess::All => true,
            FolderAccess::Only(folders) => folders.contains(folder),
        }
    }

    fn may(&self, action: Action, folder: &str) -> bool {
        match action {
            Action::Read => self.may_read(folder) || self.may_write(folder),
            Action::Write => self.may_write(folder),
        }
    }

    /// Whether the caller may read everything, so no folder needs resolving.
    pub fn reads_all(&self) -> bool {
        self.folders == FolderAccess::All
    }
}

/// The caller of a request, when authentication is on.
pub fn caller_of(extensions: &http::Extensions) -> Option<Arc<Caller>> {
    extensions.get::<Arc<Caller>>().cloned()
}

/// Lets `caller` read a resource in `folder` (`None`: a folder this server
/// can't tell, which only a caller of every folder may read), or says why not.
pub fn authorize(caller: &Caller, folder: Option<&str>) -> Result<(), ApiError> {
    authorize_to(caller, Action::Read, folder)
}

/// Lets `caller` do `action` to a resource in `folder`, or says why not.
pub fn authorize_to(caller: &Caller, action: Action, folder: Option<&str>) -> Result<(), ApiError> {
    let allowed = match (folder, action) {
        (Some(folder), action) => caller.may(action, folder),
        (None, Action::Read) => caller.reads_all(),
        (None, Action::Write) => caller.writes == FolderAccess::All,
    };
    if allowed {
        return Ok(());
    }
    let verb = match action {
        Action::Read => "read",
        Action::Write => "write",
    };
    Err(ApiError::PermissionDenied(match folder {
        Some(folder) => format!(
            "Permission denied: {} may not {verb} folder {folder}",
            caller.subject
        ),
        None => format!(
            "Permission denied: {} may not {verb} resources outside its folders",
            caller.subject
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_listed_folders_only() {
        let caller = Caller::new("ci", FolderAccess::Only(["f1".into()].into()));
        assert_eq!(authorize(&caller, Some("f1")), Ok(()));
        let denied = authorize(&caller, Some("f2")).unwrap_err();
        assert_eq!(
            denied,
            ApiError::PermissionDenied("Permission denied: ci may not read folder f2".into())
        );
        assert!(authorize(&caller, None).is_err());
        let admin = Caller::new("admin", FolderAccess::All);
        assert_eq!(authorize(&admin, Some("f2")), Ok(()));
        assert_eq!(authorize(&admin, None), Ok(()));
    }

    #[test]
    fn writing_needs_write_access_and_grants_reading() {
        let reader = Caller::new("ci", FolderAccess::Only(["f1".into()].into()));
        let writer = Caller::with_writes(
            "pipeline",
            FolderAccess::Only(Default::default()),
            FolderAccess::Only(["f1".into()].into()),
        );
        let denied = authorize_to(&reader, Action::Write, Some("f1")).unwrap_err();
        assert_eq!(
            denied,
            ApiError::PermissionDenied("Permission denied: ci may not write folder f1".into())
        );
        assert_eq!(authorize_to(&writer, Action::Write, Some("f1")), Ok(()));
        assert_eq!(authorize_to(&writer, Action::Read, Some("f1")), Ok(()));
        assert!(authorize_to(&writer, Action::Write, Some("f2")).is_err());
        assert!(authorize_to(&writer, Action::Write, None).is_err());
    }
}
