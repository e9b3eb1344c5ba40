-- Secure messaging: the list of threads between patients and the centre's staff, for
-- both sides' inboxes. Who, state and timing only: the subject and the messages are
-- patient data and stay in the (encrypted) events of the messaging log; the service
-- reads them from there.

CREATE TABLE rm_secure_threads (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'closed')),
    assigned_to uuid,
    started_at timestamptz NOT NULL,
    last_message_at timestamptz NOT NULL,
    last_author_role text NOT NULL CHECK (last_author_role IN ('patient', 'staff')),
    unread_by_patient boolean NOT NULL,
    unread_by_staff boolean NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_secure_threads_patient ON rm_secure_threads (patient_id, last_message_at DESC);
CREATE INDEX rm_secure_threads_latest ON rm_secure_threads (last_message_at DESC);
CREATE INDEX rm_secure_threads_assigned ON rm_secure_threads (assigned_to, last_message_at DESC);
