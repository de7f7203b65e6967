"""lm-eval's own command line with harness registered as a model (`--model harness`).

lm-eval 0.4.13 does not load plugins' entry points yet, so `lm_eval --model harness` only finds
harness once this module has imported it: `python -m harness.lmeval run --model harness ...`.
"""

from __future__ import annotations


def main() -> None:
    from harness.lmeval import require_lmeval

    try:
        require_lmeval()
    except Exception as e:  # noqa: BLE001 - HarnessError: one line, exit 2
        import sys

        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    from lm_eval.__main__ import cli_evaluate

    import harness.lmeval.model  # noqa: F401 - registers the `harness` model

    cli_evaluate()


if __name__ == "__main__":
    main()
