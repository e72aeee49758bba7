//! The DICOM service as a county hospital's devices and a hostile network see
//! it: C-ECHO, AE-title and address checks, DIMSE failure statuses, and
//! malformed input that must never cost an object already stored.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use dicom_ul::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn echoscu(port: u16, calling: &str, called: &str) -> (bool, String) {
    let out = Command::new("echoscu").args(["-aet", calling, "-aec", called, "127.0.0.1", &port.to_string()]).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn started_server() -> Server {
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.add_site("远程分院", "FARAWAY", &["10.99.0.0/16"]);
    server.start();
    server
}

#[test]
fn echo_and_access_control() {
    if !require_tool("echoscu") {
        return;
    }
    let mut server = started_server();
    let (ok, out) = echoscu(server.dicom_port, "CHENGGUAN", AE);
    assert!(ok, "echoscu from a known site failed: {out}");
    // An association that can only echo has no staging files made for it;
    // one that can store has, soon after it is accepted.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.staging_files_made_ahead(), 0, "staging files were made for an echo");
    associate(server.dicom_port).release().unwrap();
    let made = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        server.staging_files_made_ahead() > 0
    });
    assert!(made, "no staging files were made ahead for a storage association");

    let (ok, out) = echoscu(server.dicom_port, "STRANGER", AE);
    assert!(!ok && out.contains("Calling AE Title Not Recognized"), "unknown AE not rejected: {out}");

    let (ok, out) = echoscu(server.dicom_port, "FARAWAY", AE);
    assert!(!ok && out.contains("Calling AE Title Not Recognized"), "known AE from a wrong address not rejected: {out}");

    let (ok, out) = echoscu(server.dicom_port, "CHENGGUAN", "SOMEONE_ELSE");
    assert!(!ok && out.contains("Called AE Title Not Recognized"), "wrong called AE not rejected: {out}");

    for expected in [
        ["association rejected", "STRANGER", "belongs to no site"],
        ["association rejected", "FARAWAY", "not allowed from 127.0.0.1"],
        ["association rejected", "SOMEONE_ELSE", "is not ours"],
    ] {
        assert!(server.wait_for_log(&expected), "no log line with {expected:?}:\n{}", server.log());
    }

    // Our own echo client, as the operator would use it.
    let out = telediag().args(["echo", "127.0.0.1", &server.dicom_port.to_string(), AE, "--calling-ae", "CHENGGUAN"]).output().unwrap();
    assert!(out.status.success(), "telediag echo failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));
    server.stop();
}

/// A minimal explicit VR little endian CT dataset (no pixel data needed here).
fn store_command(message_id: u16, sop_instance: &str) -> Vec<u8> {
    pacs_gateway::dimse::store_request(message_id, CT_IMAGE_STORAGE, sop_instance)
}

fn associate(port: u16) -> dicom_ul::ClientAssociation<TcpStream> {
    ClientAssociationOptions::new()
        .with_presentation_context(CT_IMAGE_STORAGE, vec![EXPLICIT_LE])
        .calling_ae_title("CHENGGUAN")
        .called_ae_title(AE)
        .read_timeout(Duration::from_secs(20))
        .establish(("127.0.0.1", port))
        .expect("association")
}

fn pdata(context: u8, kind: PDataValueType, is_last: bool, data: Vec<u8>) -> Pdu {
    Pdu::PData { data: vec![PDataValue { presentation_context_id: context, value_type: kind, is_last, data }] }
}

/// Sends one C-STORE whose dataset is `data`; returns (status, error comment).
fn store(association: &mut dicom_ul::ClientAssociation<TcpStream>, message_id: u16, sop: &str, data: Vec<u8>) -> (u16, String) {
    let context = association.presentation_contexts()[0].id;
    association.send(&pdata(context, PDataValueType::Command, true, store_command(message_id, sop))).unwrap();
    association.send(&pdata(context, PDataValueType::Data, true, data)).unwrap();
    match association.receive().unwrap() {
        Pdu::PData { data } => {
            let bytes = &data[0].data;
            let command = pacs_gateway::dimse::CommandSet::parse(bytes).unwrap();
            let comment = find_element(bytes, 0x0902).map(|v| String::from_utf8_lossy(&v).trim().to_owned()).unwrap_or_default();
            (command.status().unwrap(), comment)
        }
        other => panic!("expected a C-STORE-RSP, got {other:?}"),
    }
}

fn find_element(bytes: &[u8], wanted: u16) -> Option<Vec<u8>> {
    let mut offset = 0;
    while offset + 8 <= bytes.len() {
        let elem = u16::from_le_bytes([bytes[offset + 2], bytes[offset + 3]]);
        let len = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap()) as usize;
        if elem == wanted {
            return Some(bytes[offset + 8..offset + 8 + len].to_vec());
        }
        offset += 8 + len;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn dimse_statuses_say_what_was_wrong_and_leave_nothing_behind() {
    let mut server = started_server();
    let mut association = associate(server.dicom_port);

    let (status, comment) = store(&mut association, 1, "1.2.3.100", ct_dataset("1.2.3.100", "1.2.3.1"));
    assert_eq!((status, comment.as_str()), (0x0000, ""), "a valid object");

    // The dataset says one SOP instance, the command another.
    let (status, comment) = store(&mut association, 2, "1.2.3.999", ct_dataset("1.2.3.101", "1.2.3.1"));
    assert_eq!(status, 0xA900, "{comment}");
    assert!(comment.contains("SOP Instance UID"), "comment: {comment}");

    // A dataset that stops in the middle of its pixel data.
    let mut cut = ct_dataset("1.2.3.102", "1.2.3.1");
    cut.truncate(cut.len() - 1000);
    let (status, comment) = store(&mut association, 3, "1.2.3.102", cut);
    assert_eq!(status, 0xC000, "{comment}");
    assert!(comment.contains("truncated") && comment.contains("7FE0,0010"), "comment: {comment}");

    // Same UID, same bytes: success, nothing new. Same UID, other bytes: a flagged version.
    assert_eq!(store(&mut association, 4, "1.2.3.100", ct_dataset("1.2.3.100", "1.2.3.1")).0, 0x0000);
    let mut changed = ct_dataset("1.2.3.100", "1.2.3.1");
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    assert_eq!(store(&mut association, 5, "1.2.3.100", changed).0, 0x0000);
    association.release().unwrap();

    let db = server.database().await;
    let versions = db.versions_of(&"1.2.3.100".parse().unwrap()).await.unwrap();
    assert_eq!(versions.len(), 2, "the resend with other bytes is a second version");
    assert!(versions[0].object_key.ends_with("1.2.3.100.v2.dcm"));
    let detail = db.study_detail(&"1.2.3.1".parse().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(detail.summary.patient_name.as_deref(), Some("张三"));
    assert_eq!(detail.summary.num_instances, 1, "two versions of one instance count once");
    assert!(detail.series[0].instances.iter().any(|i| i.version == 2 && i.conflict), "version 2 is flagged");
    for uid in ["1.2.3.101", "1.2.3.102", "1.2.3.999"] {
        assert!(db.versions_of(&uid.parse().unwrap()).await.unwrap().is_empty(), "{uid} must not be indexed");
    }
    assert_eq!(server.original_files().len(), 2, "only the two versions are on disk: {:?}", server.original_files());
    assert!(server.staged_files().is_empty(), "partial files left: {:?}", server.staged_files());
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_failure_answers_out_of_resources() {
    // A bucket's outage is tests/scale_out.rs's.
    if !embedded_backends_only("breaks the local object directory") {
        return;
    }
    let mut server = started_server();
    // Make the object store unwritable: a file where the originals folder belongs.
    std::fs::create_dir_all(server.data().join("objects")).unwrap();
    std::fs::write(server.data().join("objects/originals"), b"not a directory").unwrap();
    let mut association = associate(server.dicom_port);
    let (status, comment) = store(&mut association, 1, "1.2.3.200", ct_dataset("1.2.3.200", "1.2.3.2"));
    assert_eq!(status, 0xA700, "{comment}");
    assert!(comment.starts_with("out of resources"), "comment: {comment}");
    association.release().unwrap();
    assert!(server.database().await.versions_of(&"1.2.3.200".parse().unwrap()).await.unwrap().is_empty());
    assert!(server.staged_files().is_empty(), "partial files left: {:?}", server.staged_files());
    server.stop();
}

fn raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_is_refused_and_the_service_carries_on() {
    let mut server = started_server();
    // A good association stays open through all of it.
    let mut survivor = associate(server.dicom_port);
    assert_eq!(store(&mut survivor, 1, "1.2.3.300", ct_dataset("1.2.3.300", "1.2.3.3")).0, 0);

    // Garbage instead of a PDU: the connection is closed or aborted.
    let reply = raw(server.dicom_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(reply.is_empty() || reply[0] == 0x07 || reply[0] == 0x03, "garbage answered with {reply:02x?}");

    // An A-ASSOCIATE-RQ announcing 4 GB: refused without waiting for the bytes.
    let reply = raw(server.dicom_port, &[0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xF0, 0x00, 0x01]);
    assert!(reply.is_empty() || reply[0] == 0x07 || reply[0] == 0x03, "absurd length answered with {reply:02x?}");

    // P-DATA cut off: a store whose dataset never finishes, then the connection drops.
    {
        let mut association = associate(server.dicom_port);
        let context = association.presentation_contexts()[0].id;
        association.send(&pdata(context, PDataValueType::Command, true, store_command(1, "1.2.3.301"))).unwrap();
        let full = ct_dataset("1.2.3.301", "1.2.3.3");
        association.send(&pdata(context, PDataValueType::Data, false, full[..200].to_vec())).unwrap();
        drop(association); // no release, no abort: the TCP connection just goes
    }

    // Data without a command: a protocol error, answered with A-ABORT.
    {
        let mut association = associate(server.dicom_port);
        let context = association.presentation_contexts()[0].id;
        association.send(&pdata(context, PDataValueType::Data, true, vec![1, 2, 3, 4])).unwrap();
        assert!(matches!(association.receive(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    }

    // Fragments on a presentation context that was never accepted.
    {
        let mut association = associate(server.dicom_port);
        association.send(&pdata(99, PDataValueType::Command, true, store_command(1, "1.2.3.302"))).unwrap();
        assert!(matches!(association.receive(), Ok(Pdu::AbortRQ { .. }) | Err(_)));
    }

    // The survivor still works, and so do new associations.
    assert_eq!(store(&mut survivor, 2, "1.2.3.303", ct_dataset("1.2.3.303", "1.2.3.3")).0, 0);
    survivor.release().unwrap();
    let mut fresh = associate(server.dicom_port);
    assert_eq!(store(&mut fresh, 1, "1.2.3.304", ct_dataset("1.2.3.304", "1.2.3.3")).0, 0);
    fresh.release().unwrap();

    std::thread::sleep(Duration::from_millis(300));
    let db = server.database().await;
    let detail = db.study_detail(&"1.2.3.3".parse().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(detail.summary.num_instances, 3, "the three good objects, nothing else");
    assert!(db.versions_of(&"1.2.3.301".parse().unwrap()).await.unwrap().is_empty());
    assert!(server.staged_files().is_empty(), "partial files left: {:?}", server.staged_files());
    assert!(server.wait_for_log(&["aborting association"]), "protocol errors are logged");
    assert!(server.wait_for_log(&["partial object discarded"]), "the cut-off store is logged");
    server.stop();
}

#[test]
fn presentation_contexts_are_accepted_or_rejected_with_the_right_reason() {
    use dicom_ul::pdu::{AssociationRQ, PresentationContextProposed, PresentationContextResultReason, UserVariableItem};
    let mut server = started_server();
    let request = Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "CHENGGUAN".into(),
        called_ae_title: AE.into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![
            // CT, offered JPEG 2000 first: accepted as proposed, no transcoding
            PresentationContextProposed {
                id: 1,
                abstract_syntax: CT_IMAGE_STORAGE.into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.4.90".into(), EXPLICIT_LE.into()],
            },
            // a SOP class that is not storage
            PresentationContextProposed {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.2.2.1".into(),
                transfer_syntaxes: vec![EXPLICIT_LE.into()],
            },
            // a transfer syntax nobody knows
            PresentationContextProposed {
                id: 5,
                abstract_syntax: CT_IMAGE_STORAGE.into(),
                transfer_syntaxes: vec!["1.2.3.4.5.999".into()],
            },
            // 12-lead ECG in deflated explicit VR little endian
            PresentationContextProposed {
                id: 7,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.9.1.1".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.1.99".into()],
            },
            // MR in HTJ2K
            PresentationContextProposed {
                id: 9,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.4".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.4.202".into()],
            },
        ],
        user_variables: vec![UserVariableItem::MaxLength(16384)],
    });
    let mut bytes = Vec::new();
    dicom_ul::write_pdu(&mut bytes, &request).unwrap();
    let reply = raw(server.dicom_port, &bytes);
    let answer = dicom_ul::read_pdu(&reply[..], 1 << 20, false).unwrap().expect("a complete PDU");
    let Pdu::AssociationAC(ac) = answer else { panic!("expected A-ASSOCIATE-AC, got {answer:?}") };
    let result = |id: u8| ac.presentation_contexts.iter().find(|pc| pc.id == id).unwrap().clone();
    assert_eq!(result(1).reason, PresentationContextResultReason::Acceptance);
    assert_eq!(result(1).transfer_syntax, "1.2.840.10008.1.2.4.90", "the first proposed syntax is kept");
    assert_eq!(result(3).reason, PresentationContextResultReason::AbstractSyntaxNotSupported);
    assert_eq!(result(5).reason, PresentationContextResultReason::TransferSyntaxesNotSupported);
    assert_eq!(result(7).reason, PresentationContextResultReason::Acceptance);
    assert_eq!(result(9).reason, PresentationContextResultReason::Acceptance);
    let max_pdu = ac.user_variables.iter().find_map(|v| match v {
        UserVariableItem::MaxLength(n) => Some(*n),
        _ => None,
    });
    assert_eq!(max_pdu, Some(256 * 1024), "we announce our max PDU");
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_study_becomes_complete_and_queues_a_job() {
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.start_with(&[("TELEDIAG_STUDY_STABLE_SECS", "1")]);
    let mut association = associate(server.dicom_port);
    assert_eq!(store(&mut association, 1, "1.2.3.400", ct_dataset("1.2.3.400", "1.2.3.4")).0, 0);
    association.release().unwrap();
    let db = server.database().await;
    let status = || async { db.study_detail(&"1.2.3.4".parse().unwrap(), None).await.unwrap().unwrap().summary.status };
    assert_eq!(status().await, "receiving");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status().await != "complete" {
        assert!(std::time::Instant::now() < deadline, "study not complete 10 s after its last instance");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(study_complete_jobs(&db).await, 1);

    // A late instance reopens the study; it completes and is queued again.
    let mut association = associate(server.dicom_port);
    assert_eq!(store(&mut association, 1, "1.2.3.401", ct_dataset("1.2.3.401", "1.2.3.4")).0, 0);
    association.release().unwrap();
    assert_eq!(status().await, "receiving");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status().await != "complete" {
        assert!(std::time::Instant::now() < deadline, "reopened study not complete again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(study_complete_jobs(&db).await, 2);
    server.stop();
}

/// Study-complete jobs in any state (the worklist consumes them as they come).
async fn study_complete_jobs(db: &telediag_archive::Database) -> i64 {
    let mut total = 0;
    for state in ["queued", "running", "done", "failed"] {
        total += db.count_jobs(telediag_archive::jobs::JobKind::StudyComplete, state).await.unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_accepting_and_finishes_the_object_in_flight() {
    let mut server = started_server();
    let mut association = associate(server.dicom_port);
    let context = association.presentation_contexts()[0].id;
    let full = ct_dataset("1.2.3.500", "1.2.3.5");
    association.send(&pdata(context, PDataValueType::Command, true, store_command(1, "1.2.3.500"))).unwrap();
    association.send(&pdata(context, PDataValueType::Data, false, full[..300].to_vec())).unwrap();

    unsafe_kill(server.pid(), "TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(TcpStream::connect(("127.0.0.1", server.dicom_port)).is_err(), "still accepting after SIGTERM");

    if let Err(e) = association.send(&pdata(context, PDataValueType::Data, true, full[300..].to_vec())) {
        panic!("the association in flight was cut after SIGTERM ({e}); server log:\n{}", server.log());
    }
    let Pdu::PData { data } = association.receive().unwrap() else { panic!("expected a C-STORE-RSP") };
    assert_eq!(pacs_gateway::dimse::CommandSet::parse(&data[0].data).unwrap().status(), Some(0));
    let _ = association.release();
    server.stop(); // waits for the exit
    assert!(server.log().contains("stopped"), "no clean exit in the log:\n{}", server.log());
    let db = server.database().await;
    assert_eq!(db.versions_of(&"1.2.3.500".parse().unwrap()).await.unwrap().len(), 1, "the object in flight was stored");
}

#[test]
fn an_idle_association_is_aborted() {
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.start_with(&[("TELEDIAG_IDLE_TIMEOUT_SECS", "1")]);
    let mut association = associate(server.dicom_port);
    std::thread::sleep(Duration::from_millis(2500));
    let answer = association.receive();
    assert!(matches!(answer, Ok(Pdu::AbortRQ { .. }) | Err(_)), "expected an abort, got {answer:?}");
    assert!(server.wait_for_log(&["idle timeout"]), "the timeout is logged");
    server.stop();
}

/// A small tmpfs, unmounted (lazily) on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status().is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: cannot mount a tmpfs here (needs root) to fill a disk");
        }
        ok.then(|| SmallDisk(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_out_of_resources_and_loses_nothing() {
    let mut server = Server::new();
    let Some(_disk) = SmallDisk::mount(&server.data(), "8M") else { return };
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.start();
    let mut association = associate(server.dicom_port);
    assert_eq!(store(&mut association, 1, "1.2.3.600", ct_dataset("1.2.3.600", "1.2.3.6")).0, 0);

    // Fill the disk.
    let filler = server.data().join("filler");
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
    }
    let (status, comment) = store(&mut association, 2, "1.2.3.601", ct_dataset("1.2.3.601", "1.2.3.6"));
    assert_eq!(status, 0xA700, "{comment}");
    assert!(comment.starts_with("out of resources"), "comment: {comment}");

    // Space comes back: the service stores again, and the first object is intact.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(store(&mut association, 3, "1.2.3.602", ct_dataset("1.2.3.602", "1.2.3.6")).0, 0);
    association.release().unwrap();
    let db = server.database().await;
    let detail = db.study_detail(&"1.2.3.6".parse().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(detail.summary.num_instances, 2);
    assert!(db.versions_of(&"1.2.3.601".parse().unwrap()).await.unwrap().is_empty());
    let first = &db.versions_of(&"1.2.3.600".parse().unwrap()).await.unwrap()[0];
    let stored = server.object(&first.object_key);
    let (_, offset) = telediag_archive::part10::read_header(&stored[..]).unwrap();
    assert_eq!(&stored[offset as usize..], &ct_dataset("1.2.3.600", "1.2.3.6")[..]);
    assert!(server.staged_files().is_empty(), "partial files left: {:?}", server.staged_files());
    server.stop();
}

/// Idle sockets, and sockets that send half a request, hold no association
/// slot: a real sender gets through while hundreds sit open, and ARTIM
/// closes them.
#[test]
fn idle_connections_do_not_stop_a_real_sender() {
    if !require_tool("echoscu") {
        return;
    }
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.start_with(&[("TELEDIAG_ARTIM_SECS", "3")]);
    let mut idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(("127.0.0.1", server.dicom_port)).unwrap()).collect();
    for socket in idle.iter_mut().take(40) {
        socket.write_all(&[0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x01]).unwrap(); // 4 KB promised, 2 sent
    }
    let (ok, output) = echoscu(server.dicom_port, "CHENGGUAN", AE);
    assert!(ok, "a real sender is served beside 200 idle connections: {output}");
    let mut association = associate(server.dicom_port);
    assert_eq!(store(&mut association, 1, "1.2.3.700", ct_dataset("1.2.3.700", "1.2.3.7")).0, 0x0000);
    association.release().unwrap();

    // The idle ones are closed: the oldest to make room (64 may wait per
    // address), the rest when ARTIM runs out.
    std::thread::sleep(Duration::from_secs(4));
    let closed = idle
        .iter_mut()
        .filter_map(|socket| {
            socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut byte = [0u8; 1];
            let closed = match socket.read(&mut byte) {
                Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                Ok(n) => n == 0,
            };
            closed.then_some(())
        })
        .count();
    assert_eq!(closed, 200, "every idle connection is closed by now");
    server.stop();
}

/// A hospital cannot add objects to another hospital's study by sending
/// its Study Instance UID: storescu is refused with 0x0124 and a reason.
#[tokio::test(flavor = "multi_thread")]
async fn another_sites_study_uid_is_refused_over_c_store() {
    if !require_tool("storescu") {
        return;
    }
    let mut server = Server::new();
    server.add_site("城关镇卫生院", "CHENGGUAN", &[]);
    server.add_site("二号县医院", "ERYUAN", &[]);
    server.start();
    let dir = tempfile::tempdir().unwrap();
    let part10 = |name: &str, sop: &str, study: &str| ct_part10_file(&dir.path().join(name), sop, study);
    let send = |calling: &str, file: &std::path::Path| {
        let out = Command::new("storescu")
            .args(["-v", "-aet", calling, "-aec", AE, "127.0.0.1", &server.dicom_port.to_string()])
            .arg(file)
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let owner = send("CHENGGUAN", &part10("a.dcm", "1.2.3.800", "1.2.3.8"));
    assert!(!owner.contains("E:"), "{owner}");
    let intruder = send("ERYUAN", &part10("b.dcm", "1.2.3.801", "1.2.3.8"));
    // PS3.7's "Refused: Not Authorized", which storescu prints by number.
    assert!(intruder.contains("Store Response (Unknown Status: 0x124)"), "{intruder}");
    let again = send("ERYUAN", &part10("c.dcm", "1.2.3.800", "1.2.3.9"));
    assert!(again.contains("Store Response (Unknown Status: 0x124)"), "{again}");

    let db = server.database().await;
    let detail = db.study_detail(&"1.2.3.8".parse().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(detail.summary.num_instances, 1, "the intruder's object did not join the study");
    assert!(db.versions_of(&"1.2.3.801".parse().unwrap()).await.unwrap().is_empty());
    assert_eq!(db.versions_of(&"1.2.3.800".parse().unwrap()).await.unwrap().len(), 1, "no new version from another site");
    assert_eq!(db.uid_collisions(10).await.unwrap().len(), 2);
    assert!(server.wait_for_log(&["cross-site UID collision", "ERYUAN"]), "the refusal is logged");
    server.stop();
}
