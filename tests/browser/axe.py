"""axe-core in a Playwright page: the serious and critical WCAG 2.2 AA problems of what is on screen."""
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_problems(page) -> list:
    """Run axe-core in the page; return its serious and critical WCAG 2.2 AA violations."""
    # From our own origin: the pages' CSP allows same-origin scripts only, never inline ones.
    page.add_script_tag(url=page.evaluate("location.origin") + "/static/vendor/axe.min.js")
    result = page.evaluate("""async (tags) => {
        const found = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return found.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
    }""", WCAG_TAGS)
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page, checked: list) -> None:
    """Fail with axe's findings unless the page has no serious or critical problem; note the page checked."""
    problems = axe_problems(page)
    assert problems == [], f"{page.url}: {problems}"
    checked.append(page.url)
