"""The client contract: one pydantic model per message, both directions.

- `client_events`: Socket.IO events clients send (payload, roles, ack answer, rate limit);
- `server_events`: Socket.IO events the server pushes (payload, recipients);
- `review`, `http`: REST bodies, queries and answers;
- `base`: the bases and bounded types they are made of, the catalog's codes as enumerations;
- `generate`: writes docs/protocol.md's message tables, docs/contract.schema.json and the
  pages' TypeScript declarations (web/src/contract/) from these models; CI checks they are
  current (`python -m vtax.contract.generate --check`).
"""
