//! Compile-time guarantees: which handles cross threads. A change that loses one fails to build.

use tasklets::supervisor::{ChildSpec, Supervisor, SupervisorRef};
use tasklets::{
    Addr, Caller, DeadLetter, DeadLetters, Event, EventSink, Exit, Group, Handle, Message, Name,
    RegistryError, RequestError, Router, SendError, Signal, Tasklet, TrySendError, WaitForCall,
    WaitForMessages, WaitForTasklet, WaitForTimeout,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn handles_that_cross_threads_are_send_and_sync() {
    send_sync::<Addr>();
    send_sync::<Handle>();
    send_sync::<Tasklet<u32>>();
    send_sync::<Message>();
    send_sync::<Name>();
    send_sync::<Group>();
    send_sync::<Router>();
    send_sync::<EventSink>();
    send_sync::<Caller<u32, bool>>();
    send_sync::<Signal<String>>();
    send_sync::<DeadLetters>();
    send_sync::<DeadLetter>();
    send_sync::<WaitForMessages>();
    send_sync::<WaitForTasklet>();
    send_sync::<WaitForTimeout>();
    send_sync::<WaitForCall<u32, bool>>();
    send_sync::<SupervisorRef>();
    send::<Supervisor>();
    send::<ChildSpec>();
}

#[test]
fn errors_convert_into_boxed_send_sync_errors() {
    fn boxed<E: std::error::Error + Send + Sync + 'static>(
        e: E,
    ) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(e)
    }
    assert_eq!(
        boxed(SendError::NoDestination(Message::new("m"))).to_string(),
        "message has no destination"
    );
    assert_eq!(
        boxed(TrySendError::Full(Message::new("m"))).to_string(),
        "mailbox is full"
    );
    assert_eq!(boxed(Exit::Stopped).to_string(), "tasklet was stopped");
    assert!(boxed(RegistryError::Finished)
        .to_string()
        .contains("finished"));
    assert!(boxed(RequestError::CalleeFinished)
        .to_string()
        .contains("finished"));
    send::<Event>();
}
