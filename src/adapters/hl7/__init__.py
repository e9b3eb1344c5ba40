"""HL7 v2 over MLLP: framing, a cheap MSH reader, ACKs, the inbound listener and store."""
