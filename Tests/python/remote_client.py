"""A client of ShmIPCRemote that no Swift code wrote: Python's grpcio, with stubs generated from
the same .proto at run time (grpcio-tools), the authkey handshake done by hand with hmac, and
values in ShmIPC's binary Codable form built with struct. Run by RemoteInteropTests:

  python3 Tests/python/remote_client.py HOST:PORT AUTHKEY

against a RemoteManager exporting `jobs` (a Queue<UInt64>) and `counts` (a
SharedDictionary<String, Int>). It puts 7, 8 and 9 into `jobs`, takes one item from it, reads
counts["a"], sets counts["b"] = 42, checks that a wrong key is refused and that an unknown
name is NOT_FOUND, and prints one line per result ("got N", "a=N", "ok").
"""
import hashlib
import hmac
import os
import pathlib
import struct
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTOCOL = "shmipc.remote.v1"


def stubs():
    """remote_pb2 and remote_pb2_grpc, generated into a temporary directory."""
    out = tempfile.mkdtemp(prefix="shmipc-remote-py-")
    proto_root = ROOT / "Protos"
    status = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}",
                          str(proto_root / "shmipc/remote/v1/remote.proto")])
    if status != 0:
        sys.exit(f"protoc failed: {status}")
    sys.path.insert(0, out)
    from shmipc.remote.v1 import remote_pb2, remote_pb2_grpc  # noqa: E402
    return remote_pb2, remote_pb2_grpc


def session(channel, pb, rpc, key):
    """The handshake: the server's challenge, our proof and challenge, the server's proof."""
    auth = rpc.AuthStub(channel)
    server_nonce = auth.Begin(pb.BeginRequest(protocol=PROTOCOL), timeout=60).server_nonce
    client_nonce = os.urandom(32)
    proof = hmac.new(key, f"{PROTOCOL} client".encode() + server_nonce + client_nonce, hashlib.sha256).digest()
    answer = auth.Prove(pb.ProveRequest(server_nonce=server_nonce, proof=proof, client_nonce=client_nonce), timeout=60)
    expected = hmac.new(key, f"{PROTOCOL} server".encode() + client_nonce + server_nonce, hashlib.sha256).digest()
    if not hmac.compare_digest(answer.proof, expected):
        sys.exit("the server does not hold the key")
    return [("shmipc-session", answer.session.decode())]


# ShmIPC's binary Codable form: fixed-width integers little-endian, a String as a varint
# length and its UTF-8 bytes.
def uint64(n):
    return struct.pack("<Q", n)


def int64(n):
    return struct.pack("<q", n)


def string(s):
    data, n, prefix = s.encode(), len(s.encode()), b""
    while True:
        byte = n & 0x7F
        n >>= 7
        prefix += bytes([byte | (0x80 if n else 0)])
        if not n:
            return prefix + data


def main():
    address, key = sys.argv[1], sys.argv[2].encode()
    pb, rpc = stubs()
    channel = grpc.insecure_channel(address)

    # A wrong key: the server refuses the proof.
    try:
        session(channel, pb, rpc, key + b"-wrong")
        sys.exit("a wrong key was accepted")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:
            sys.exit(f"a wrong key: {error.code()}")

    metadata = session(channel, pb, rpc, key)
    objects = rpc.ObjectsStub(channel)
    listing = {o.name: o for o in objects.List(pb.ListRequest(), metadata=metadata, timeout=60).objects}
    if listing["jobs"].kind != "queue" or listing["jobs"].value_type != "Swift.UInt64":
        sys.exit(f"jobs: {listing['jobs']}")

    for n in (7, 8, 9):
        objects.QueuePut(pb.QueuePutRequest(name="jobs", item=pb.Value(type="Swift.UInt64", data=uint64(n)), timeout_ms=10_000),
                         metadata=metadata, timeout=60)
    got = objects.QueueGet(pb.QueueGetRequest(name="jobs", timeout_ms=10_000), metadata=metadata, timeout=60).item
    print(f"got {struct.unpack('<Q', got.data)[0]} {got.type}")

    value = objects.DictGet(pb.DictKeyRequest(name="counts", key=pb.Value(type="Swift.String", data=string("a"))),
                            metadata=metadata, timeout=60)
    print(f"a={struct.unpack('<q', value.value.data)[0]}")
    objects.DictSet(pb.DictSetRequest(name="counts", key=pb.Value(type="Swift.String", data=string("b")),
                                      value=pb.Value(type="Swift.Int", data=int64(42))), metadata=metadata, timeout=60)

    try:
        objects.QueueGet(pb.QueueGetRequest(name="nothing", timeout_ms=0), metadata=metadata, timeout=60)
        sys.exit("an unknown name was served")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            sys.exit(f"an unknown name: {error.code()}")
    print("ok", flush=True)


if __name__ == "__main__":
    main()
