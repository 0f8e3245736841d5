//! Authorization: whether an authenticated caller may read a folder. The
//! services call [`authorize`] with the folder they resolved for the resource;
//! this is the one place that decides.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::ApiError;

/// Which folders a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderAccess {
    All,
    Only(HashSet<Box<str>>),
}

/// Who is calling, as the authentication layer found out from the token; it
/// sits in the request extensions. Without one, authentication is off.
#[derive(Debug)]
pub struct Caller {
    subject: Box<str>,
    folders: FolderAccess,
}

impl Caller {
    pub fn new(subject: impl Into<Box<str>>, folders: FolderAccess) -> Self {
        Self {
            subject: subject.into(),
            folders,
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
    let allowed = match folder {
        Some(folder) => caller.may_read(folder),
        None => caller.reads_all(),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(match folder {
        Some(folder) => format!(
            "Permission denied: {} may not read folder {folder}",
            caller.subject
        ),
        None => format!(
            "Permission denied: {} may not read resources outside its folders",
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
}
