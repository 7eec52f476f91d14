"""The bare Flask-SocketIO relay the chat benchmark compares against: same events, no database.

python bench/chat_echo_server.py PORT [REDIS_URL]
"""
import eventlet

eventlet.monkey_patch()

import gc  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")
from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

port = int(sys.argv[1])
app = Flask(__name__)
queue_url = sys.argv[2] if len(sys.argv) > 2 else None
# Its own pub/sub channel per Redis database, as the CRM does: Redis pub/sub ignores the
# database number, so anything else on the server (a test run) could share its rooms.
socketio = SocketIO(app, async_mode="eventlet", message_queue=queue_url,
                    channel=f"chat-echo:{queue_url.rsplit('/', 1)[-1] if queue_url else 0}")
AGENTS = 50
counter = {"chats": 0, "seq": {}}


@socketio.on("connect", namespace="/agent")
def agent_connect(auth=None):
    join_room(f"user:{auth['agent']}")


@socketio.on("start", namespace="/webchat")
def start(data):
    """Give the chat to agent n % AGENTS and put the resident in its room."""
    counter["chats"] += 1
    chat = counter["chats"]
    join_room(f"conv:{chat}")
    socketio.emit("assigned", {"conversation_id": chat}, namespace="/agent", to=f"user:{data['agent']}")
    return {"conversation_id": chat, "token": str(chat)}


def relay(chat, author, body, client_id, to_ns, room, agent=None):
    seq = counter["seq"][chat] = counter["seq"].get(chat, 0) + 1
    message = {"id": f"{chat}-{seq}", "seq": seq, "author": author, "body": body, "client_id": client_id,
               "conversation_id": chat}
    socketio.emit("message", message, namespace=to_ns, to=room, skip_sid=request.sid)
    return {"id": message["id"], "seq": seq}


@socketio.on("message", namespace="/webchat")
def resident_message(data):
    return relay(data["conversation_id"], "resident", data["body"], data["client_id"], "/agent",
                 f"user:{data['agent']}")


@socketio.on("message", namespace="/agent")
def agent_message(data):
    chat = data["conversation_id"]
    return relay(chat, "agent", data["body"], data["client_id"], "/webchat", f"conv:{chat}")


if __name__ == "__main__":
    listener = eventlet.listen(("127.0.0.1", port), backlog=1024)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    print("ready", flush=True)
    eventlet.wsgi.server(listener, app, log_output=False, max_size=10000)
