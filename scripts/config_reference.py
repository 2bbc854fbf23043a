"""Print the README's config reference (every key, its default, its meaning) as a Markdown table."""

from rnnclf.config.reference import reference_rows


def main() -> None:
    print("| key | default | meaning |")
    print("|---|---|---|")
    for key, default, meaning in reference_rows():
        print(f"| `{key}` | `{default}` | {meaning} |")


if __name__ == "__main__":
    main()
