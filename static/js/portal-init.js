// GOV.UK Frontend's own start-up line: marks the page so components style themselves for JavaScript.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
