// Progressive enhancement only: every resident page works without this file.
import { initAll } from '../vendor/govuk/govuk-frontend.min.js';

initAll();
