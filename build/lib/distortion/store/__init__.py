"""The biometric store: records (SQLite), the 1:N index (FAISS), Milvus as the scale path, and the system
that enrols, verifies, identifies and revokes people by their carriers."""
