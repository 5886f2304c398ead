"""An in-memory Hugging Face Hub behind ``huggingface_hub``'s own API layer, for push tests offline.

The HTTP methods of ``HfApi`` that a push goes through (``repo_info``, ``create_repo``, ``preupload_lfs_files``,
``create_commit``, ``list_repo_tree``, ``get_paths_info``, ``hf_hub_download``, ``_validate_yaml``) and ``HfFileSystem``'s file reads
are replaced; everything above them — ``datasets``' ``push_to_hub``, ``upload_file``, ``upload_folder`` (its
single-commit path), ``DatasetCard`` — runs unchanged, so the test sees the exact files, YAML included, that the
Hub would receive.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import weakref
from pathlib import Path


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}  # repo id -> path in repo -> bytes
        self.private: dict[str, bool | None] = {}
        self.commits: list[dict] = []  # every commit: repo, message, paths added, paths deleted
        self.validated: list[str] = []  # the READMEs upload_folder had checked
        self._preuploaded: dict[int, bytes] = {}
        self._downloads = Path(tempfile.mkdtemp(prefix="fake-hub-"))
        weakref.finalize(self, shutil.rmtree, self._downloads, True)  # removed with the hub: nothing left in /tmp

    # -- what a test reads -------------------------------------------------------------------------------
    def files(self, repo_id: str) -> dict[str, bytes]:
        return dict(self.repos[repo_id])

    def text(self, repo_id: str, path: str) -> str:
        return self.repos[repo_id][path].decode()

    def hf_download_path(self, repo_id: str, path: str) -> str:
        """A local copy of one file of a repo (what ``hf_hub_download`` would return)."""
        target = self._downloads / "read" / repo_id / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.repos[repo_id][path])
        return str(target)

    def sha(self, repo_id: str) -> str:
        return hashlib.sha1(f"{repo_id}:{len([c for c in self.commits if c['repo'] == repo_id])}".encode()).hexdigest()

    # -- the API layer -----------------------------------------------------------------------------------
    def install(self, monkeypatch) -> FakeHub:
        import huggingface_hub.hf_api
        from huggingface_hub import HfApi, HfFileSystem

        hub = self

        def full_id(repo_id: str) -> str:
            return repo_id if "/" in repo_id else f"me/{repo_id}"

        def http_error(kind: str, message: str):
            import importlib

            from huggingface_hub import errors

            http = importlib.import_module(errors.Response.__module__.split(".")[0])  # huggingface_hub's HTTP client
            request = http.Request("GET", "https://huggingface.co/api/fake")
            return getattr(errors, kind)(message, response=errors.Response(404, request=request))

        def not_found(repo_id):
            return http_error("RepositoryNotFoundError", f"{repo_id} not found")

        def repo_info(api, repo_id, *args, revision=None, repo_type=None, **kwargs):
            repo_id = full_id(repo_id)
            if repo_id not in hub.repos:
                raise not_found(repo_id)
            from types import SimpleNamespace

            return SimpleNamespace(id=repo_id, sha=hub.sha(repo_id), private=hub.private[repo_id])

        def create_repo(api, repo_id, *args, private=None, exist_ok=False, repo_type=None, **kwargs):
            from huggingface_hub import RepoUrl

            repo_id = full_id(repo_id)
            if repo_id not in hub.repos:
                hub.repos[repo_id], hub.private[repo_id] = {}, private
            return RepoUrl(f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}")

        def content(operation) -> bytes:
            if id(operation) in hub._preuploaded:
                return hub._preuploaded.pop(id(operation))
            with operation.as_file() as handle:
                return handle.read()

        def preupload_lfs_files(api, repo_id, additions, *args, **kwargs):
            for operation in additions:  # datasets deletes the temporary Parquet file right after this call
                hub._preuploaded[id(operation)] = content(operation)

        def create_commit(api, repo_id, operations, *, commit_message, repo_type=None, **kwargs):
            from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete

            repo_id = full_id(repo_id)
            if repo_id not in hub.repos:
                raise not_found(repo_id)
            files, added, deleted = hub.repos[repo_id], [], []
            for operation in operations:
                if isinstance(operation, CommitOperationAdd):
                    files[operation.path_in_repo] = content(operation)
                    added.append(operation.path_in_repo)
                elif isinstance(operation, CommitOperationDelete):
                    for path in [
                        p
                        for p in files
                        if p == operation.path_in_repo or p.startswith(operation.path_in_repo.rstrip("/") + "/")
                    ]:
                        del files[path]
                        deleted.append(path)
            hub.commits.append({"repo": repo_id, "message": commit_message, "added": added, "deleted": deleted})
            kind = "datasets/" if repo_type == "dataset" else ""
            sha = hub.sha(repo_id)
            return CommitInfo(
                commit_url=f"https://huggingface.co/{kind}{repo_id}/commit/{sha}",
                commit_message=commit_message,
                commit_description="",
                oid=sha,
            )

        def entries(repo_id, prefix, recursive):
            from huggingface_hub.hf_api import RepoFile, RepoFolder

            prefix = (prefix or "").strip("/")
            seen_folders = set()
            for path, data in sorted(hub.repos[full_id(repo_id)].items()):
                if prefix and not path.startswith(prefix + "/"):
                    continue
                rest = path[len(prefix) + 1 :] if prefix else path
                if "/" in rest and not recursive:
                    folder = (prefix + "/" if prefix else "") + rest.split("/")[0]
                    if folder not in seen_folders:
                        seen_folders.add(folder)
                        yield RepoFolder(path=folder, oid=hashlib.sha1(folder.encode()).hexdigest())
                    continue
                yield RepoFile(path=path, size=len(data), oid=hashlib.sha1(data).hexdigest())

        def list_repo_tree(api, repo_id, path_in_repo=None, *, recursive=False, **kwargs):
            found = list(entries(repo_id, path_in_repo, recursive))
            if path_in_repo and path_in_repo.strip("/") and not found:  # as the Hub answers for a missing folder
                raise http_error("RemoteEntryNotFoundError", f"{path_in_repo} not found in {repo_id}")
            return iter(found)

        def get_paths_info(api, repo_id, paths, **kwargs):
            from huggingface_hub.hf_api import RepoFile

            paths = [paths] if isinstance(paths, str) else paths
            files = hub.repos[full_id(repo_id)]
            return [
                RepoFile(path=p, size=len(files[p]), oid=hashlib.sha1(files[p]).hexdigest())
                for p in paths
                if p in files
            ]

        def hf_hub_download(api, repo_id, filename, *args, **kwargs):
            data = hub.repos[full_id(repo_id)][filename]
            target = hub._downloads / hashlib.sha1(data).hexdigest() / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            return str(target)

        def validate_yaml(api, content, *args, **kwargs):
            import yaml  # the Hub checks a README's metadata before upload_folder sends it: here, that it parses

            if content.startswith("---"):
                header = yaml.safe_load(content.split("---")[1])
                if not isinstance(header, dict):
                    raise ValueError("Invalid metadata in README.md.")
            hub.validated.append(content)

        def fs_open(fs, path, mode="rb", *args, **kwargs):
            resolved = fs.resolve_path(path)
            files = hub.repos[resolved.repo_id]
            if resolved.path_in_repo not in files:
                raise FileNotFoundError(path)  # as HfFileSystem raises it
            return io.BytesIO(files[resolved.path_in_repo])

        for name, function in [
            ("repo_info", repo_info),
            ("create_repo", create_repo),
            ("preupload_lfs_files", preupload_lfs_files),
            ("create_commit", create_commit),
            ("list_repo_tree", list_repo_tree),
            ("get_paths_info", get_paths_info),
            ("hf_hub_download", hf_hub_download),
            ("_validate_yaml", validate_yaml),
        ]:
            monkeypatch.setattr(HfApi, name, function)
        monkeypatch.setattr(HfFileSystem, "_open", fs_open)
        # upload_folder's streamed pipeline (with hf_xet installed) asks the Hub for upload modes over HTTP
        # itself; its single-commit path (hf_xet absent) sends the same files through create_commit.
        monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
        monkeypatch.setattr(
            huggingface_hub.constants, "HF_HUB_OFFLINE", False
        )  # this hub answers (the suite runs offline)
        HfFileSystem.clear_instance_cache()  # listings cached by an earlier test's file system
        return self
