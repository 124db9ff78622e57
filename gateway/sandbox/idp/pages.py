"""The persona picker: the sandbox's stand-in for the real login (app scan, password, face).

One accessible HTML form in Traditional Chinese, Simplified Chinese, English and Portuguese: a
language on the document and on every passage, a fieldset with a legend, a label on every choice.
"""

from __future__ import annotations

from html import escape

from gateway.sandbox.personas import Persona

_TEXT = {
    "title": (
        "選擇測試身分",
        "选择测试身份",
        "Choose a sandbox persona",
        "Escolha uma identidade de teste",
    ),
    "intro": (
        "這是沙盒身分提供者，不會進行真正的登入。請選擇以哪位虛構居民登入。",
        "这是沙盒身份提供者，不会进行真正的登录。请选择以哪位虚构居民登录。",
        "This is a sandbox identity provider: no real login happens. "
        "Choose the fictitious resident to log in as.",
        "Este é um fornecedor de identidade de testes: não há um início de sessão verdadeiro. "
        "Escolha o residente fictício com que quer iniciar sessão.",
    ),
    "submit": ("登入", "登录", "Log in", "Iniciar sessão"),
}
_LANGS = ("zh-Hant", "zh-Hans", "en", "pt")


def _texts(key: str, tag: str = "span") -> str:
    return " / ".join(
        f'<{tag} lang="{lang}">{escape(text)}</{tag}>'
        for lang, text in zip(_LANGS, _TEXT[key], strict=True)
    )


def _choice(index: int, persona: Persona) -> str:
    ident = f"persona-{index}"
    latin = f"{persona.family_name_latin} {persona.given_names_latin}"
    return (
        f'<div class="choice"><input type="radio" name="persona" id="{ident}" '
        f'value="{escape(persona.id)}" required{" checked" if index == 0 else ""}>'
        f' <label for="{ident}"><span lang="zh-Hant">{escape(persona.name_original)}</span> '
        f'<span lang="en">{escape(latin)} ({escape(persona.id)}, {escape(persona.assurance)})'
        f" — {escape(persona.description)}</span></label></div>"
    )


def persona_picker(title: str, action: str, handle: str, personas: list[Persona]) -> str:
    choices = "\n".join(_choice(i, p) for i, p in enumerate(personas))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — sandbox</title>
<style>body{{font-family:sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}}
.choice{{margin:.5rem 0}}button{{font-size:1rem;padding:.5rem 1.5rem}}</style>
</head>
<body>
<main>
<h1>{escape(title)}</h1>
<p>{_texts("intro")}</p>
<form method="post" action="{escape(action)}">
<input type="hidden" name="interaction" value="{escape(handle)}">
<fieldset>
<legend>{_texts("title")}</legend>
{choices}
</fieldset>
<p><button type="submit">{_texts("submit")}</button></p>
</form>
</main>
</body>
</html>
"""
