//! Exit codes, Rook's where Rook has them: 0 success, 1 failure (a run that found something),
//! 22 invalid input (EINVAL: nothing was created); multinet's own 69 for a run that could not
//! be carried out (its report's verdict is `error`), and 128 + n after signal n — and the one
//! mapping from errors to them ([`code`]).

/// Success: the run passed, the input is valid, the command did what it was asked.
pub const SUCCESS: u8 = 0;
/// Failure: the run failed or warned, or could not be carried out.
pub const FAILURE: u8 = 1;
/// Invalid input, as Rook's tester uses it (EINVAL): nothing was created.
pub const INVALID: u8 = 22;
/// `multinet run` could not be carried out — the lab cannot be built here (preflight), a
/// backend could not be reached or refused the run, the report could not be written — so
/// there is no network verdict: the report says verdict `error` and why. Rook's tester
/// exits 1 for these as for a failed network; automation must tell them apart, so this is
/// sysexits.h's `EX_UNAVAILABLE` (69), clear of clap's 2, the shell's 126/127 and 128 + n.
pub const ERROR: u8 = 69;

/// What kind of end an error is; each error type of the crate says which of these it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The input is wrong ([`INVALID`]).
    Invalid,
    /// The work could not be done, or found a failure ([`FAILURE`]).
    Failed,
    /// A validation run could not be carried out: no verdict ([`ERROR`]).
    Error,
    /// A signal ended it (128 + the signal's number).
    Signal(crate::signals::Signal),
}

/// An error that knows its [`Class`].
pub trait Classify {
    /// Which kind of end this is.
    fn class(&self) -> Class;
}

/// The exit code of `error`: the one place errors become exit codes.
pub fn code(error: &impl Classify) -> u8 {
    match error.class() {
        Class::Invalid => INVALID,
        Class::Failed => FAILURE,
        Class::Error => ERROR,
        Class::Signal(signal) => signal.exit_code(),
    }
}

/// An error and its causes on one line, `what: why: root cause` (empty levels skipped): the
/// agent's function, so the coordinator and the agents say errors alike.
pub use multinet_agent::chain;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Signal;

    struct E(Class);
    impl Classify for E {
        fn class(&self) -> Class {
            self.0
        }
    }

    #[test]
    fn every_class_has_rooks_code() {
        assert_eq!(code(&E(Class::Invalid)), 22);
        assert_eq!(code(&E(Class::Failed)), 1);
        assert_eq!(code(&E(Class::Error)), 69);
        // 128 + the signal number, as a shell reports it (SIGINT 2, SIGHUP 1, SIGTERM 15).
        assert_eq!(code(&E(Class::Signal(Signal::Interrupt))), 130);
        assert_eq!(code(&E(Class::Signal(Signal::Hangup))), 129);
        assert_eq!(code(&E(Class::Signal(Signal::Terminate))), 143);
    }
}
