//! The daemon's errors as gRPC statuses, by kind (as containerd's CRI maps errdefs).

use berth_api::ErrorKind;
use tonic::Status;

use crate::error::ApiError;

/// One mapping for every CRI call: the kind picks the code, the message stays.
pub fn status(e: ApiError) -> Status {
    let msg = e.message;
    match e.kind {
        ErrorKind::InvalidArgument => Status::invalid_argument(msg),
        ErrorKind::Unauthorized => Status::unauthenticated(msg),
        ErrorKind::Forbidden => Status::permission_denied(msg),
        ErrorKind::NotFound => Status::not_found(msg),
        ErrorKind::Conflict => Status::failed_precondition(msg),
        ErrorKind::NotImplemented => Status::unimplemented(msg),
        _ => Status::unknown(msg),
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        status(e)
    }
}
