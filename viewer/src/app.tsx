// The application's routes and the frame around them. Signed out, every
// path shows the login, which returns to that path afterwards.

import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { type ReadRequest, whenUnauthenticated } from './api';
import { Header } from './components/header';
import { Signing } from './pages/signing';
import { useApp } from './context';
import { Admin } from './pages/admin';
import { Login } from './pages/login';
import { Reading } from './pages/reading';
import { Register } from './pages/register';
import { SiteRequests } from './pages/site-requests';
import { Worklist } from './pages/worklist';

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}

function Shell() {
  const { user, setUser, t } = useApp();
  const location = useLocation();
  const [notice, setNotice] = useState<string | undefined>(undefined);
  useEffect(() => {
    // A session that ends while the page is open (expiry, logout in another
    // tab) brings the login back, then returns here.
    whenUnauthenticated(() => setUser(null));
  }, [setUser]);
  if (!user) return <Login expired={location.path !== '/' && location.path !== '/login'} />;
  // preact-iso's Router reads its direct children as routes: they are
  // listed in one array, never wrapped in fragments or conditions.
  const home = user.roles.includes('site_user')
    ? () => <SiteRequests {...(notice ? { notice } : {})} />
    : isReader(user.roles)
      ? Worklist
      : Admin;
  const routes = [
    <Route key="home" path="/" component={home} />,
    <Route key="login" path="/login" component={home} />,
    <Route key="read" path="/read/:id" component={Reading} />,
  ];
  if (user.roles.includes('site_user')) {
    const registered = (request: ReadRequest) => setNotice(t('register.done', { id: request.id, accession: request.accession_number ?? '—' }));
    routes.push(<Route key="register" path="/register" component={() => <Register onRegistered={registered} />} />);
  }
  if (user.roles.includes('admin')) routes.push(<Route key="admin" path="/admin" component={Admin} />);
  if (isReader(user.roles)) routes.push(<Route key="signing" path="/signing" component={Signing} />);
  routes.push(<Route key="missing" default component={() => <NotFound text={t('error.notFound')} back={t('error.back')} />} />);
  return (
    <div class="shell">
      <Header />
      <main class="content">
        <Router>{routes}</Router>
      </main>
    </div>
  );
}

function NotFound(props: { text: string; back: string }) {
  return (
    <section class="empty-page">
      <p>{props.text}</p>
      <a href="/">{props.back}</a>
    </section>
  );
}

/** Readers land on the worklist; an administrator who reads nothing lands in administration. */
function isReader(roles: readonly string[]): boolean {
  return roles.some(r => r === 'radiologist' || r === 'ecg_doctor' || r === 'reviewer');
}
