"""`conveyor artifacts keygen`, `sign-blob` and `verify-blob`: a signing key pair, and
signatures of single files outside the store, with cosign's command names and flags
(conveyor.artifacts.signing does the work)."""

from __future__ import annotations

import os
import sys

import click


def _password_for_new_key() -> str:
    """CONVEYOR_SIGNING_PASSWORD, else asked twice on a terminal, else a one-line error."""
    from conveyor.artifacts.signing import PASSWORD_VARIABLE
    from conveyor.errors import UsageError

    password = os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise UsageError(
            f"no password for the key: set {PASSWORD_VARIABLE} (nothing to ask on a terminal here)"
        )
    entered: str = click.prompt(
        "Password for the private key", hide_input=True, confirmation_prompt=True, err=True
    )
    return entered


@click.command("keygen")
@click.option(
    "--out",
    "prefix",
    required=True,
    metavar="PREFIX",
    help="Write PREFIX.key (private, encrypted) and PREFIX.pub (public).",
)
@click.option("--force", is_flag=True, help="Replace PREFIX.key and PREFIX.pub if they exist.")
def keygen_command(prefix: str, force: bool) -> None:
    """Make a signing key pair: PREFIX.key, an ECDSA P-256 private key in PKCS#8 PEM
    encrypted with the password in CONVEYOR_SIGNING_PASSWORD (asked for on a terminal
    when it is not set), readable by you alone; and PREFIX.pub, its public key, which
    `openssl dgst -verify` and `cosign verify-blob --key` take. The encryption is
    PKCS#8's PBKDF2 at openssl's 2,048 rounds: use a long random password.

    A run signs its artifacts when CONVEYOR_SIGNING_KEY names the .key file."""
    from conveyor.artifacts.signing import KEY_VARIABLE, generate_key, key_id, load_public_key
    from conveyor.errors import UsageError
    from conveyor.fsutil import atomic_write

    key_path, pub_path = f"{prefix}.key", f"{prefix}.pub"
    existing = [p for p in (key_path, pub_path) if os.path.lexists(p)]
    if existing and not force:
        raise UsageError(
            f"{existing[0]} exists: not replacing a key (--force replaces it; signatures "
            "made with the old key then no longer verify with the new .pub)"
        )
    directory = os.path.dirname(key_path) or "."
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: no such directory")
    private_pem, public_pem = generate_key(_password_for_new_key())
    # The private key is written 0600 from its first byte (the temporary too).
    atomic_write(key_path, private_pem, perms=0o600)
    atomic_write(pub_path, public_pem, perms=0o644)
    kid = key_id(load_public_key(pub_path))
    click.echo(f"wrote {key_path} (private, encrypted) and {pub_path}; key id {kid[:16]}")
    click.echo(f"sign with it: export {KEY_VARIABLE}={key_path}")


@click.command("sign-blob")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    "key_path",
    default=None,
    help="The private key (default: CONVEYOR_SIGNING_KEY); its password is read from "
    "CONVEYOR_SIGNING_PASSWORD.",
)
@click.option(
    "--output-signature",
    "output",
    default=None,
    help="Write the signature here (default: FILE.sig; '-' prints it).",
)
def sign_blob_command(file: str, key_path: str | None, output: str | None) -> None:
    """Sign FILE as `cosign sign-blob --key` does: base64 of an ECDSA signature over
    the SHA-256 of its content, written to FILE.sig."""
    from conveyor.artifacts.signing import KEY_VARIABLE, sign, signature_name, signing_key
    from conveyor.errors import UsageError
    from conveyor.fsutil import atomic_write

    key = signing_key(key_path)
    if key is None:
        raise UsageError(f"no signing key: give --key or set {KEY_VARIABLE}")
    signature = sign(key.private_key, file)
    if output == "-":
        click.echo(signature)
        return
    target = output or signature_name(file)
    atomic_write(target, signature)
    click.echo(f"wrote {target}", err=True)


@click.command("verify-blob")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, help="The public key (.pub).")
@click.option(
    "--signature", "signature_path", default=None, help="The signature (default: FILE.sig)."
)
def verify_blob_command(file: str, key_path: str, signature_path: str | None) -> None:
    """Check FILE's signature (a cosign or Conveyor `.sig`) against a public key: exit 0
    when it verifies, 1 when it does not."""
    from conveyor.artifacts.signing import (
        SigningError,
        VerificationFailed,
        load_public_key,
        signature_name,
        verify,
    )

    public_key = load_public_key(key_path)
    sig_path = signature_path or signature_name(file)
    try:
        with open(sig_path, encoding="ascii", errors="replace") as fh:
            signature = fh.read()
    except OSError as exc:
        raise SigningError(f"{sig_path}: cannot read the signature: {exc.strerror}") from None
    if not verify(public_key, file, signature):
        raise VerificationFailed(
            f"{file}: the signature {sig_path} does not verify with {key_path}: the file or "
            "the signature was changed, or another key signed it"
        )
    click.echo(f"{file}: verified with {key_path}")
